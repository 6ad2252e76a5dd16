import pytest
from cryptography.fernet import InvalidToken
from django.core.exceptions import ValidationError
from django.db import connection as db

from connector.models import SECRET_FIELDS, Connection, WebhookKey
from tests.connector.secrets import SECRET_VALUES, WEBHOOK_SECRET, assert_no_secret_in, forget_fernet_keys
from tests.factories import add_hmac_key, make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def fernet_keys(settings):
    """Set FERNET_KEYS for the rest of the test (and make the fields notice); restored afterwards."""

    def use(*keys):
        settings.FERNET_KEYS = list(keys)
        forget_fernet_keys()

    yield use
    forget_fernet_keys()


def _raw_columns(table, columns, pk):
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return [bytes(value) for value in cursor.fetchone()]


def test_every_encrypted_field_of_a_connection_is_listed_as_a_secret():
    from fernet_fields import EncryptedField

    encrypted = {f.name for f in Connection._meta.concrete_fields if isinstance(f, EncryptedField)}
    assert encrypted == set(SECRET_FIELDS)
    assert isinstance(WebhookKey._meta.get_field("secret"), EncryptedField)


def test_secret_columns_hold_no_plaintext():
    connection = make_connection(
        fusion_auth=Connection.FusionAuth.BASIC, fusion_username="integration", **SECRET_VALUES
    )
    key = add_hmac_key(connection, secret=WEBHOOK_SECRET)

    raw = _raw_columns("connector_connection", SECRET_FIELDS, connection.pk)
    for name, value in zip(SECRET_FIELDS, raw, strict=True):
        assert SECRET_VALUES[name].encode() not in value, name
        assert value.startswith(b"gAAAAA"), f"{name} is not a Fernet token"
    [raw_key] = _raw_columns("connector_webhookkey", ["secret"], key.pk)
    assert WEBHOOK_SECRET.encode() not in raw_key and raw_key.startswith(b"gAAAAA")

    # ... and the values read back intact.
    stored = Connection.objects.get(pk=connection.pk)
    assert {name: getattr(stored, name) for name in SECRET_FIELDS} == SECRET_VALUES
    assert WebhookKey.objects.get(pk=key.pk).secret == WEBHOOK_SECRET


def test_secrets_written_under_an_old_key_read_after_a_new_key_is_put_first(fernet_keys):
    fernet_keys("old-key-2025")
    connection = make_connection(**SECRET_VALUES)
    key = add_hmac_key(connection, secret=WEBHOOK_SECRET)

    fernet_keys("new-key-2026")  # the old key dropped too early: nothing can be read
    with pytest.raises(InvalidToken):
        Connection.objects.get(pk=connection.pk)

    fernet_keys("new-key-2026", "old-key-2025")
    assert Connection.objects.get(pk=connection.pk).fusion_client_secret == SECRET_VALUES["fusion_client_secret"]
    assert WebhookKey.objects.get(pk=key.pk).secret == WEBHOOK_SECRET

    # New writes use the first key: readable with the new key alone.
    Connection.objects.filter(pk=connection.pk).update(fusion_password="written-after-rotation")
    fernet_keys("new-key-2026")
    assert Connection.objects.values_list("fusion_password", flat=True).get(pk=connection.pk) == (
        "written-after-rotation"
    )


def test_repr_and_str_never_show_secrets():
    connection = make_connection(**SECRET_VALUES)
    key = add_hmac_key(connection, secret=WEBHOOK_SECRET)
    assert_no_secret_in(repr(connection) + str(connection) + repr(key) + str(key))
    assert connection.slug in repr(connection)


def test_oauth_connection_needs_its_identity_domain_and_client_id():
    connection = make_connection()
    connection.fusion_token_url = ""
    connection.fusion_client_id = ""
    with pytest.raises(ValidationError) as exc:
        connection.full_clean()
    assert "fusion_token_url" in exc.value.message_dict
    assert exc.value.message_dict["fusion_client_id"] == ["OAuth 2.0 needs the client id."]


def test_basic_auth_needs_a_username():
    connection = make_connection()
    connection.fusion_auth = Connection.FusionAuth.BASIC
    connection.fusion_username = ""
    with pytest.raises(ValidationError) as exc:
        connection.full_clean()
    assert exc.value.message_dict["fusion_username"] == ["Basic auth needs the Fusion username."]


def test_sales_journal_needs_ledger_source_and_category():
    connection = make_connection(journal_mode=Connection.JournalMode.NONE, ledger_id="", journal_source="")
    connection.journal_mode = Connection.JournalMode.SALES_JOURNAL
    with pytest.raises(ValidationError) as exc:
        connection.full_clean()
    assert {"ledger_id", "journal_source"} <= set(exc.value.message_dict)


def test_bad_time_zone_and_currency_are_explained():
    connection = make_connection()
    connection.time_zone = "Mars/Olympus"
    connection.currency = "usd"
    with pytest.raises(ValidationError) as exc:
        connection.full_clean()
    assert "is not a known time zone" in exc.value.message_dict["time_zone"][0]
    assert "three-letter ISO code" in exc.value.message_dict["currency"][0]


def test_webhook_keys_need_a_secret_or_a_pem_public_key():
    connection = make_connection()
    with pytest.raises(ValidationError) as exc:
        WebhookKey(connection=connection, scheme=WebhookKey.Scheme.HMAC, secret="").full_clean()
    assert "shared secret" in exc.value.message_dict["secret"][0]
    with pytest.raises(ValidationError) as exc:
        WebhookKey(connection=connection, scheme=WebhookKey.Scheme.ADOBE_RSA, public_key="not a key").full_clean()
    assert "Not a PEM public key" in exc.value.message_dict["public_key"][0]
