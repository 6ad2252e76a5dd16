import io
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, ManagementUtility, call_command

from audit.models import AuditEvent
from connector.models import Connection, WebhookKey
from tests.connector.secrets import assert_no_secret_in, forget_fernet_keys

pytestmark = pytest.mark.django_db


def public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def document(tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_FUSION_SECRET", "fusion-secret-from-env")
    secret_file = tmp_path / "commerce-token-secret"
    secret_file.write_text("token-secret-from-file\n")
    pem_file = tmp_path / "adobe.pem"
    pem_file.write_text(public_pem())
    return {
        "slug": "acme-us",
        "name": "Acme US",
        "fusion_base_url": "https://acme.fa.us2.oraclecloud.com/",
        "fusion_token_url": "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token",
        "fusion_client_id": "acme-client",
        "fusion_client_secret": {"env": "ACME_FUSION_SECRET"},
        "business_unit": "Vision Operations",
        "transaction_source": "COMMERCE_WEB",
        "commerce_base_url": "https://shop.acme.example",
        "commerce_consumer_key": "ck-123",
        "commerce_consumer_secret": "consumer-secret-inline",
        "commerce_access_token": "access-token-inline",
        "commerce_access_token_secret": {"file": str(secret_file)},
        "webhook_keys": [
            {"scheme": "hmac", "label": "primary", "secret": "webhook-secret-inline", "encoding": "base64"},
            {"scheme": "adobe_rsa", "label": "commerce-admin", "public_key": {"file": str(pem_file)}},
        ],
    }


def write(tmp_path, doc, name="connection.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


SECRETS_IN_DOCUMENT = (
    "fusion-secret-from-env",
    "token-secret-from-file",
    "consumer-secret-inline",
    "access-token-inline",
    "webhook-secret-inline",
)


def test_apply_creates_the_connection_with_secrets_from_env_file_and_inline(tmp_path, document):
    output = run("apply_connection", write(tmp_path, document))

    connection = Connection.objects.get(slug="acme-us")
    assert connection.fusion_base_url == "https://acme.fa.us2.oraclecloud.com"
    assert connection.fusion_client_secret == "fusion-secret-from-env"
    assert connection.commerce_access_token_secret == "token-secret-from-file"
    assert connection.commerce_consumer_secret == "consumer-secret-inline"
    keys = {k.label: k for k in connection.webhook_keys.all()}
    assert keys["primary"].secret == "webhook-secret-inline" and keys["primary"].encoding == "base64"
    assert keys["commerce-admin"].public_key.startswith("-----BEGIN PUBLIC KEY-----")

    assert "Connection acme-us created" in output
    assert "fusion_client_secret: <changed>" in output and "name: 'Acme US'" in output
    assert "webhook key hmac 'primary': added" in output
    assert_no_secret_in(output, SECRETS_IN_DOCUMENT)
    actions = sorted(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["connection.created", "webhook_key.created", "webhook_key.created"]
    assert_no_secret_in(str(list(AuditEvent.objects.values("message", "data"))), SECRETS_IN_DOCUMENT)


def test_applying_the_same_document_twice_changes_nothing(tmp_path, document):
    path = write(tmp_path, document)
    run("apply_connection", path)
    before = Connection.objects.get(slug="acme-us").updated_at
    audit_rows = AuditEvent.objects.count()

    output = run("apply_connection", path)

    assert output.strip() == "Connection acme-us: no changes."
    assert Connection.objects.get(slug="acme-us").updated_at == before
    assert AuditEvent.objects.count() == audit_rows


def test_apply_updates_only_what_changed_and_prints_it(tmp_path, document):
    run("apply_connection", write(tmp_path, document))
    document.update(name="Acme United States", commerce_consumer_secret="rotated-consumer-secret")
    document["webhook_keys"] = [
        {"scheme": "hmac", "label": "primary", "secret": "***", "active": False},
        {"scheme": "hmac", "label": "rotation-2026", "secret": "next-webhook-secret"},
    ]

    output = run("apply_connection", write(tmp_path, document, "v2.json"))

    assert "name: 'Acme US' -> 'Acme United States'" in output
    assert "commerce_consumer_secret: <changed>" in output
    assert "webhook key adobe_rsa 'commerce-admin': removed" in output
    assert "webhook key hmac 'primary': active: True -> False" in output
    assert "webhook key hmac 'rotation-2026': added" in output
    assert_no_secret_in(output, ("rotated-consumer-secret", "next-webhook-secret", "webhook-secret-inline"))
    primary = WebhookKey.objects.get(label="primary")
    assert primary.secret == "webhook-secret-inline" and not primary.active  # "***" kept the secret
    update = AuditEvent.objects.get(action="connection.updated")
    assert update.data["fields"] == ["name", "commerce_consumer_secret"]


def test_apply_reads_the_document_from_stdin(document):
    document["fusion_client_secret"] = "inline-fusion-secret"
    output = run("apply_connection", "-", stdin=io.StringIO(json.dumps(document)))
    assert "created" in output
    assert Connection.objects.get(slug="acme-us").fusion_client_secret == "inline-fusion-secret"


@pytest.mark.parametrize(
    "change, named",
    [
        ({"colour": "blue"}, "colour: unknown field"),
        ({"fusion_base_url": "https://pod.fa.us2.oraclecloud.com@evil.example"}, "fusion_base_url:"),
        ({"fusion_base_url": "http://acme.fa.us2.oraclecloud.com"}, "fusion_base_url: Fusion base URL: only https"),
        ({"fusion_client_secret": {"env": "NOT_SET_ANYWHERE"}}, "fusion_client_secret: the environment variable"),
        ({"commerce_consumer_secret": {"file": "/nonexistent/secret"}}, "commerce_consumer_secret: cannot read"),
        ({"fusion_client_secret": {"vault": "x"}}, "fusion_client_secret: give a string"),
        ({"fusion_client_secret": "***"}, 'fusion_client_secret: "***" keeps the stored secret, but none'),
        ({"retry_max_attempts": "many"}, "retry_max_attempts:"),
        ({"enabled": "perhaps"}, "enabled:"),
        ({"time_zone": "Mars/Olympus"}, "time_zone:"),
        ({"name": None}, "name: a value is required"),
        ({"webhook_keys": [{"scheme": "adobe_rsa", "label": "x", "public_key": "nope"}]}, "webhook_keys[0].public_key"),
        ({"webhook_keys": [{"scheme": "hmac", "label": "x"}]}, "webhook_keys[0].secret"),
        ({"webhook_keys": [{"scheme": "hmac", "label": "x", "secret": "s", "algo": "md5"}]}, "webhook_keys[0].algo"),
        ({"webhook_keys": [{"scheme": "rot13"}]}, "webhook_keys[0].scheme"),
        ({"webhook_keys": "all of them"}, "webhook_keys: a list"),
    ],
)
def test_an_invalid_document_is_refused_naming_the_field_and_nothing_is_written(tmp_path, document, change, named):
    document.update(change)
    with pytest.raises(CommandError) as exc:
        run("apply_connection", write(tmp_path, document))
    assert named in str(exc.value)
    assert "nothing was written" in str(exc.value)
    assert not Connection.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_invalid_update_leaves_the_stored_connection_untouched(tmp_path, document):
    run("apply_connection", write(tmp_path, document))
    document.update(name="Would change", fusion_token_url="https://idcs-x.identity.oraclecloud.com.evil.example/t")
    with pytest.raises(CommandError, match="fusion_token_url"):
        run("apply_connection", write(tmp_path, document, "bad.json"))
    assert Connection.objects.get(slug="acme-us").name == "Acme US"


def test_a_refused_document_exits_non_zero(tmp_path, document, capsys):
    document["colour"] = "blue"
    with pytest.raises(SystemExit) as exc:
        ManagementUtility(["manage.py", "apply_connection", write(tmp_path, document)]).execute()
    assert exc.value.code != 0
    assert "colour: unknown field" in capsys.readouterr().err


def test_not_json_is_refused_with_the_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"slug": "x",,}')
    with pytest.raises(CommandError, match="not valid JSON .* line 1"):
        run("apply_connection", str(path))


def test_export_masks_every_secret_and_applies_back_as_no_change(tmp_path, document):
    run("apply_connection", write(tmp_path, document))

    exported = run("export_connection", "acme-us")

    assert_no_secret_in(exported, SECRETS_IN_DOCUMENT)
    doc = json.loads(exported)
    assert doc["fusion_client_secret"] == "***" and doc["fusion_password"] == ""
    assert [k["secret"] for k in doc["webhook_keys"]] == ["", "***"]  # adobe_rsa has none; hmac masked
    assert doc["fusion_base_url"] == "https://acme.fa.us2.oraclecloud.com"
    assert "created_at" not in doc and "fusion_sync_watermark" not in doc

    assert run("apply_connection", write(tmp_path, doc, "exported.json")).strip() == "Connection acme-us: no changes."
    assert Connection.objects.get(slug="acme-us").fusion_client_secret == "fusion-secret-from-env"


def test_export_of_an_unknown_slug_is_an_error():
    with pytest.raises(CommandError, match="No connection with slug 'nope'"):
        run("export_connection", "nope")


@pytest.fixture
def fernet_keys(settings):
    def use(*keys):
        settings.FERNET_KEYS = list(keys)
        forget_fernet_keys()

    yield use
    forget_fernet_keys()


def test_rotate_secrets_re_encrypts_everything_with_the_first_key(tmp_path, document, fernet_keys):
    fernet_keys("old-key")
    run("apply_connection", write(tmp_path, document))

    fernet_keys("new-key", "old-key")
    output = run("rotate_secrets")
    assert "connector.Connection: 1 row(s) re-encrypted" in output
    assert "connector.WebhookKey: 2 row(s) re-encrypted" in output

    fernet_keys("new-key")  # the old key is gone: everything still reads
    connection = Connection.objects.get(slug="acme-us")
    assert connection.fusion_client_secret == "fusion-secret-from-env"
    assert WebhookKey.objects.get(label="primary").secret == "webhook-secret-inline"
    assert AuditEvent.objects.filter(action="secrets.rotated").count() == 1


def test_rotate_secrets_writes_nothing_when_a_value_cannot_be_decrypted(tmp_path, document, fernet_keys):
    fernet_keys("lost-key")
    run("apply_connection", write(tmp_path, document))
    fernet_keys("new-key")
    with pytest.raises(CommandError, match="connector.Connection"):
        run("rotate_secrets")
    fernet_keys("lost-key")  # still readable with the original key: nothing was rewritten
    assert Connection.objects.get(slug="acme-us").fusion_client_secret == "fusion-secret-from-env"


@pytest.mark.django_db
def test_ensure_admin_says_where_to_sign_in_and_how_to_reset_the_password(monkeypatch):
    monkeypatch.setenv("WEB_PORT", "8123")
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "Created admin login 'admin' with password:" in out.getvalue()
    assert "http://127.0.0.1:8123/admin/" in out.getvalue()
    assert "manage.py changepassword admin" in out.getvalue()
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "password:" not in again.getvalue() and "http://127.0.0.1:8123/admin/" in again.getvalue()
