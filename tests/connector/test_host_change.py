"""Changing where a side's credentials go (its host) clears that side's stored secrets unless the same change gives
them again: someone who may edit a connection cannot point it at a host of their choosing and have the stored
secrets sent there. The service does it for every door; the admin form and apply_connection say so first."""

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from connector.connection_documents import ConnectionDocumentError, connection_apply, connection_export
from connector.connections import connection_save
from connector.forms import ConnectionForm
from connector.models import Connection
from tests.connector.secrets import SECRET_VALUES, assert_no_secret_in
from tests.factories import make_connection
from tests.sync.admin.test_connections import change_url, form_data

pytestmark = pytest.mark.django_db

FUSION_SECRETS = ("fusion_client_secret", "fusion_password")
COMMERCE_SECRETS = (
    "commerce_consumer_secret",
    "commerce_access_token",
    "commerce_access_token_secret",
    "commerce_client_secret",
)


@pytest.fixture
def connection():
    return make_connection(**SECRET_VALUES)


def stored(connection):
    return Connection.objects.get(pk=connection.pk)


# --- the service --------------------------------------------------------------------------------------------


def test_a_new_fusion_host_clears_the_stored_fusion_secrets_only(connection):
    connection.fusion_base_url = "https://other.fa.us2.oraclecloud.com"
    saved = connection_save(connection=connection, actor="tester")

    after = stored(connection)
    assert all(getattr(after, name) == "" for name in FUSION_SECRETS)
    assert all(getattr(after, name) == SECRET_VALUES[name] for name in COMMERCE_SECRETS)
    assert set(saved.secrets_cleared) == set(FUSION_SECRETS)
    event = AuditEvent.objects.get(action="connection.updated", connection_id=connection.pk)
    assert event.data["cleared_by_host_change"] == list(FUSION_SECRETS)
    assert "fusion_client_secret" in event.data["fields"] and "fusion_client_secret" not in event.data["values"]
    assert "secrets cleared because the host changed" in event.message
    assert_no_secret_in(str(event.data) + event.message)


@pytest.mark.parametrize(
    "field, value, cleared",
    [
        ("fusion_token_url", "https://idcs-ffff0000.identity.oraclecloud.com/oauth2/v1/token", FUSION_SECRETS),
        ("commerce_base_url", "https://shop.attacker.example", COMMERCE_SECRETS),
        ("commerce_ims_token_url", "https://ims-eu1.adobelogin.com/ims/token/v3", COMMERCE_SECRETS),
    ],
)
def test_each_host_field_clears_its_side(connection, field, value, cleared):
    setattr(connection, field, value)
    assert set(connection_save(connection=connection, actor="tester").secrets_cleared) == set(cleared)
    after = stored(connection)
    assert all(getattr(after, name) == "" for name in cleared)


def test_secrets_given_in_the_same_change_are_kept_even_when_unchanged(connection):
    connection.commerce_base_url = "https://shop2.example.com"
    connection.commerce_consumer_secret = "new-consumer-secret-value"
    saved = connection_save(
        connection=connection,
        actor="tester",
        secrets_given={"commerce_consumer_secret", "commerce_access_token"},  # the token typed again, same value
    )
    after = stored(connection)
    assert after.commerce_consumer_secret == "new-consumer-secret-value"
    assert after.commerce_access_token == SECRET_VALUES["commerce_access_token"]
    assert after.commerce_access_token_secret == after.commerce_client_secret == ""
    assert set(saved.secrets_cleared) == {"commerce_access_token_secret", "commerce_client_secret"}


def test_a_path_change_on_the_same_host_keeps_the_secrets(connection):
    connection.fusion_token_url = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v2/token"
    connection.commerce_base_url = "https://SHOP.example.com:443"
    saved = connection_save(connection=connection, actor="tester")
    assert saved.secrets_cleared == ()
    after = stored(connection)
    assert all(getattr(after, name) == value for name, value in SECRET_VALUES.items())


# --- the admin form -----------------------------------------------------------------------------------------


def bound_form(connection, **changes):
    data = form_data(connection, **changes)
    return ConnectionForm(data=data, instance=stored(connection))


def test_the_form_refuses_a_host_change_without_the_secret_the_auth_needs(connection):
    form = bound_form(connection, fusion_base_url="https://other.fa.us2.oraclecloud.com")
    assert not form.is_valid()
    assert "The Fusion host changed" in " ".join(form.errors["fusion_client_secret"])
    assert "fusion_password" not in form.errors  # not needed by OAuth 2.0: cleared, not asked for


def test_the_form_asks_for_every_secret_the_commerce_auth_needs(connection):
    form = bound_form(connection, commerce_base_url="https://shop2.example.com")
    assert not form.is_valid()
    assert set(form.errors) == {"commerce_consumer_secret", "commerce_access_token", "commerce_access_token_secret"}


def test_the_form_says_it_next_to_the_host_fields(connection):
    form = ConnectionForm(instance=connection)
    for name in ("fusion_base_url", "fusion_token_url", "commerce_base_url", "commerce_ims_token_url"):
        assert "clears the stored" in form.fields[name].help_text, name
    assert "oraclecloud.com" in form.fields["fusion_base_url"].help_text  # the example is still there


def test_admin_host_change_with_the_secret_typed_again_keeps_it_and_clears_the_rest(client, connection):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-not-used"))
    data = form_data(connection, fusion_base_url="https://other.fa.us2.oraclecloud.com")
    data["fusion_client_secret"] = SECRET_VALUES["fusion_client_secret"]  # the same secret, typed again

    response = client.post(change_url(connection), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    after = stored(connection)
    assert after.fusion_base_url == "https://other.fa.us2.oraclecloud.com"
    assert after.fusion_client_secret == SECRET_VALUES["fusion_client_secret"]
    assert after.fusion_password == ""  # stored, not typed again: cleared
    event = AuditEvent.objects.get(action="connection.updated", connection_id=connection.pk)
    assert event.data["cleared_by_host_change"] == ["fusion_password"]
    assert event.actor == "root"


def test_admin_host_change_without_the_secret_is_refused_and_changes_nothing(client, connection):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-not-used"))
    data = form_data(connection, commerce_base_url="https://shop.attacker.example")
    response = client.post(change_url(connection), data)
    assert response.status_code == 200
    assert "enter the Commerce consumer secret again" in response.content.decode()
    assert stored(connection).commerce_base_url == connection.commerce_base_url
    assert not AuditEvent.objects.filter(action="connection.updated").exists()


# --- apply_connection ---------------------------------------------------------------------------------------


def test_a_document_moving_a_host_must_give_that_sides_secrets_again(connection):
    document = connection_export(connection=connection)
    document["fusion_base_url"] = "https://other.fa.us2.oraclecloud.com"  # secrets stay "***"
    document.pop("fusion_password")  # left out: kept, so refused as well

    with pytest.raises(ConnectionDocumentError) as caught:
        connection_apply(document=document)

    errors = caught.value.errors
    assert any(e.startswith("fusion_client_secret: the Fusion host changes (fusion_base_url)") for e in errors)
    assert any(e.startswith("fusion_password: the Fusion host changes") for e in errors)
    assert not any(e.startswith("commerce_") for e in errors)
    assert stored(connection).fusion_base_url == connection.fusion_base_url


def test_a_document_moving_a_host_with_the_secrets_given_or_cleared_is_applied(connection):
    document = connection_export(connection=connection)
    document["commerce_base_url"] = "https://shop2.example.com"
    document["commerce_consumer_secret"] = SECRET_VALUES["commerce_consumer_secret"]
    document["commerce_access_token"] = "new-access-token-value"
    document["commerce_access_token_secret"] = "new-access-token-secret"
    document["commerce_client_secret"] = ""

    applied = connection_apply(document=document)

    after = stored(connection)
    assert after.commerce_consumer_secret == SECRET_VALUES["commerce_consumer_secret"]
    assert after.commerce_access_token == "new-access-token-value"
    assert after.commerce_client_secret == ""
    assert "commerce_base_url: 'https://shop.example.com' -> 'https://shop2.example.com'" in applied.changes


def test_an_exported_document_still_applies_back_unchanged(connection):
    assert connection_apply(document=connection_export(connection=connection)).changes == []
