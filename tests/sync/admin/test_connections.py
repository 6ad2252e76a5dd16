import base64
import logging

import pytest
import responses
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.urls import reverse

from audit.models import AuditEvent
from connector.apps import sync_groups_after_migrate
from connector.connections import connection_config_fields
from connector.groups import GROUP_FINANCE, GROUP_INTEGRATION_ADMIN
from connector.models import SECRET_FIELDS, Connection, WebhookKey
from core.http import clock as http_clock
from sync.admin import connections as admin_module
from sync.diagnostics import ConnectionTestResult, SideResult
from tests.connector.secrets import SECRET_VALUES, WEBHOOK_SECRET, assert_no_secret_in
from tests.factories import add_hmac_key, make_connection

pytestmark = pytest.mark.django_db


def change_url(connection):
    return reverse("admin:connector_connection_change", args=[connection.pk])


def form_data(connection=None, keys=(), **overrides):
    """The POST the connection change form sends when nothing is touched (secret boxes left blank)."""
    data = {}
    source = connection or Connection()
    for name in connection_config_fields():
        value = getattr(source, name)
        if name in SECRET_FIELDS:
            data[name] = ""
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else str(value)
    data.update(
        {
            "webhook_keys-TOTAL_FORMS": str(len(keys)),
            "webhook_keys-INITIAL_FORMS": str(sum(1 for k in keys if k.pk)),
            "webhook_keys-MIN_NUM_FORMS": "0",
            "webhook_keys-MAX_NUM_FORMS": "1000",
        }
    )
    for i, key in enumerate(keys):
        prefix = f"webhook_keys-{i}-"
        data.update(
            {
                f"{prefix}id": str(key.pk or ""),
                f"{prefix}connection": str(connection.pk if connection and connection.pk else ""),
                f"{prefix}scheme": key.scheme,
                f"{prefix}label": key.label,
                f"{prefix}secret": "",
                f"{prefix}header_name": key.header_name,
                f"{prefix}encoding": key.encoding,
                f"{prefix}prefix": key.prefix,
                f"{prefix}public_key": key.public_key,
            }
        )
        if key.active:
            data[f"{prefix}active"] = "on"
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def staff_user(username, *groups):
    user = User.objects.create_user(username=username, password="pw-not-used", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def superuser(client):
    user = User.objects.create_superuser("root", "root@example.com", "pw-not-used")
    client.force_login(user)
    return user


@pytest.fixture
def connection():
    conn = make_connection(fusion_auth=Connection.FusionAuth.OAUTH2, **SECRET_VALUES)
    add_hmac_key(conn, secret=WEBHOOK_SECRET, label="primary")
    return conn


def test_admin_creates_a_connection_and_audits_which_fields_were_set(client, superuser):
    template = make_connection()  # only to borrow valid values
    data = form_data(template, slug="new-shop", name="New shop")
    data["fusion_client_secret"] = SECRET_VALUES["fusion_client_secret"]
    data["commerce_consumer_secret"] = SECRET_VALUES["commerce_consumer_secret"]

    response = client.post(reverse("admin:connector_connection_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Connection.objects.get(slug="new-shop")
    assert created.fusion_client_secret == SECRET_VALUES["fusion_client_secret"]
    event = AuditEvent.objects.get(action="connection.created", connection_id=created.pk)
    assert event.actor == "root"
    assert "fusion_client_secret" in event.data["fields"] and "name" in event.data["fields"]
    assert "fusion_client_secret" not in event.data["values"]
    assert_no_secret_in(str(event.data) + event.message)


def test_change_form_shows_whether_a_secret_is_stored_but_never_the_secret(client, superuser, connection):
    connection.fusion_password = ""
    connection.save()
    response = client.get(change_url(connection))
    page = response.content.decode()
    assert response.status_code == 200
    assert_no_secret_in(page)
    assert 'type="password"' in page
    assert page.count(">stored<") >= len(SECRET_FIELDS) - 1 + 1  # five connection secrets + the HMAC key
    assert ">not set<" in page  # fusion_password
    assert "Create Accounting" in page and "clearing account" in page  # the journal_mode warning


def test_blank_secret_keeps_the_stored_value_and_a_new_one_replaces_it(client, superuser, connection):
    key = connection.webhook_keys.get()
    data = form_data(connection, keys=[key], name="Renamed shop")
    data["commerce_client_secret"] = "replaced-secret-value-xyz"

    response = client.post(change_url(connection), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = Connection.objects.get(pk=connection.pk)
    assert stored.name == "Renamed shop"
    assert stored.commerce_client_secret == "replaced-secret-value-xyz"
    for name in set(SECRET_FIELDS) - {"commerce_client_secret"}:
        assert getattr(stored, name) == SECRET_VALUES[name], name
    assert WebhookKey.objects.get(pk=key.pk).secret == WEBHOOK_SECRET
    event = AuditEvent.objects.get(action="connection.updated")
    assert event.data["fields"] == ["name", "commerce_client_secret"]
    assert event.data["values"] == {"name": {"from": connection.name, "to": "Renamed shop"}}
    assert "replaced-secret-value-xyz" not in str(event.data) + event.message


def test_clear_tick_empties_a_secret(client, superuser, connection):
    data = form_data(connection, keys=list(connection.webhook_keys.all()), fusion_password__clear="on")
    response = client.post(change_url(connection), data)
    assert response.status_code == 302
    assert Connection.objects.get(pk=connection.pk).fusion_password == ""
    assert AuditEvent.objects.get(action="connection.updated").data["fields"] == ["fusion_password"]


def test_typing_a_secret_and_ticking_clear_is_refused(client, superuser, connection):
    data = form_data(connection, keys=list(connection.webhook_keys.all()), fusion_password__clear="on")
    data["fusion_password"] = "something"
    response = client.post(change_url(connection), data)
    assert response.status_code == 200
    assert "not both" in str(response.context["adminform"].form.errors["fusion_password"])


def test_saving_an_untouched_form_changes_and_audits_nothing(client, superuser, connection):
    before = Connection.objects.get(pk=connection.pk).updated_at
    response = client.post(change_url(connection), form_data(connection, keys=list(connection.webhook_keys.all())))
    assert response.status_code == 302
    assert Connection.objects.get(pk=connection.pk).updated_at == before
    assert not AuditEvent.objects.filter(action__startswith="connection.").exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook_key.").exists()


def test_model_validation_messages_appear_next_to_the_fields(client, superuser, connection):
    data = form_data(
        connection,
        keys=list(connection.webhook_keys.all()),
        fusion_base_url="https://pod.fa.us2.oraclecloud.com.evil.example",
        time_zone="Mars/Olympus",
    )
    response = client.post(change_url(connection), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "is not a valid host" in errors["fusion_base_url"][0]
    assert "is not a known time zone" in errors["time_zone"][0]
    assert Connection.objects.get(pk=connection.pk).fusion_base_url == connection.fusion_base_url


def test_webhook_key_added_in_the_inline_is_audited_without_its_secret(client, superuser, connection):
    existing = connection.webhook_keys.get()
    new = WebhookKey(scheme=WebhookKey.Scheme.HMAC, label="rotation-2026", header_name="X-Sig", encoding="base64")
    data = form_data(connection, keys=[existing, new])
    data["webhook_keys-1-secret"] = "brand-new-webhook-secret"
    response = client.post(change_url(connection), data)
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    added = WebhookKey.objects.get(label="rotation-2026")
    assert added.secret == "brand-new-webhook-secret"
    event = AuditEvent.objects.get(action="webhook_key.created")
    assert "secret" in event.data["fields"]
    assert "brand-new-webhook-secret" not in str(event.data) + event.message


def test_secrets_appear_on_no_admin_page(client, superuser, connection):
    client.post(change_url(connection), form_data(connection, keys=list(connection.webhook_keys.all()), name="X"))
    pages = [
        change_url(connection),
        reverse("admin:connector_connection_changelist"),
        reverse("admin:connector_connection_history", args=[connection.pk]),
        reverse("admin:connector_connection_delete", args=[connection.pk]),
        reverse("admin:audit_auditevent_changelist"),
    ]
    pages += [reverse("admin:audit_auditevent_change", args=[e.pk]) for e in AuditEvent.objects.all()]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_secret_in(response.content.decode())


def test_enable_and_disable_actions_are_audited(client, superuser, connection):
    url = reverse("admin:connector_connection_changelist")
    client.post(url, {"action": "disable_connections", "_selected_action": [connection.pk]})
    assert not Connection.objects.get(pk=connection.pk).enabled
    client.post(url, {"action": "disable_connections", "_selected_action": [connection.pk]})  # already off
    client.post(url, {"action": "enable_connections", "_selected_action": [connection.pk]})
    assert Connection.objects.get(pk=connection.pk).enabled
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["connection.disabled", "connection.enabled"]


def test_finance_user_can_view_a_connection_but_not_change_it_or_see_a_secret(client, connection):
    client.force_login(staff_user("fiona", GROUP_FINANCE))

    page = client.get(change_url(connection))
    assert page.status_code == 200
    assert_no_secret_in(page.content.decode())
    assert "stored" in page.content.decode()
    assert 'type="password"' not in page.content.decode()

    data = form_data(connection, keys=list(connection.webhook_keys.all()), name="Hijacked")
    data["fusion_client_secret"] = "attacker-secret"
    response = client.post(change_url(connection), data)
    assert response.status_code == 403
    stored = Connection.objects.get(pk=connection.pk)
    assert stored.name == connection.name and stored.fusion_client_secret == SECRET_VALUES["fusion_client_secret"]
    assert client.get(reverse("admin:connector_connection_add")).status_code == 403


def test_integration_admin_can_change_a_connection(client, connection):
    user = staff_user("ian", GROUP_INTEGRATION_ADMIN)
    client.force_login(user)
    data = form_data(connection, keys=list(connection.webhook_keys.all()), name="Changed by ian")
    data["fusion_client_secret"] = "rotated-by-ian"
    response = client.post(change_url(connection), data)
    assert response.status_code == 302
    stored = Connection.objects.get(pk=connection.pk)
    assert stored.name == "Changed by ian" and stored.fusion_client_secret == "rotated-by-ian"
    assert AuditEvent.objects.get(action="connection.updated").user_id == user.pk


def test_groups_carry_the_permissions_their_jobs_need():
    finance = set(Group.objects.get(name=GROUP_FINANCE).permissions.values_list("codename", flat=True))
    admin = set(Group.objects.get(name=GROUP_INTEGRATION_ADMIN).permissions.values_list("codename", flat=True))
    assert {"view_connection", "view_record", "replay_record", "view_auditevent"} <= finance
    assert not {"change_connection", "add_connection", "delete_connection", "change_webhookkey"} & finance
    assert finance <= admin
    assert {"add_connection", "change_connection", "change_webhookkey", "change_periodictask"} <= admin
    assert "delete_connection" not in admin
    assert not {c for c in admin if c.endswith("_auditevent") and c != "view_auditevent"}


def test_permissions_of_models_added_later_reach_the_groups_after_migrate():
    from django.apps import apps

    content_type, _ = ContentType.objects.get_or_create(app_label="mappings", model="laterrule")
    later = [
        Permission.objects.create(codename=f"{action}_laterrule", name=f"Can {action}", content_type=content_type)
        for action in ("add", "change", "delete", "view")
    ]
    commerce_type, _ = ContentType.objects.get_or_create(app_label="commerce", model="laterthing")
    commerce_view = Permission.objects.create(codename="view_laterthing", name="v", content_type=commerce_type)
    commerce_change = Permission.objects.create(codename="change_laterthing", name="c", content_type=commerce_type)

    sync_groups_after_migrate(sender=apps.get_app_config("mappings"), using="default", apps=apps)

    finance = Group.objects.get(name=GROUP_FINANCE).permissions.all()
    assert set(later) | {commerce_view} <= set(finance)
    assert commerce_change not in finance


def test_admin_saves_log_no_secret(client, superuser, connection, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(http_clock, "sleep", lambda seconds: None)  # the failed reads retry at once
    cache.clear()  # no token left from an earlier run: this one fetches its own
    data = form_data(connection, keys=list(connection.webhook_keys.all()), name="Logged")
    data["fusion_client_secret"] = "secret-typed-into-the-admin"
    assert client.post(change_url(connection), data).status_code == 302
    assert Connection.objects.get(pk=connection.pk).fusion_client_secret == "secret-typed-into-the-admin"
    assert client.get(change_url(connection)).status_code == 200
    # Then the typed secret is used: Test connection fetches a token with it and reads both systems, logging
    # each step. Fusion's token endpoint answers; every other call fails, and is logged as failed.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fusion:
        fusion.post(connection.fusion_token_url, json={"access_token": "issued", "expires_in": 3600})
        response = client.post(
            reverse("admin:connector_connection_changelist"),
            {"action": "test_connections", "_selected_action": [connection.pk]},
        )
        (token_call,) = [c for c in fusion.calls if c.request.url == connection.fusion_token_url]
    assert response.status_code == 302
    basic = token_call.request.headers.get("Authorization", "Basic ").removeprefix("Basic ")
    sent = str(token_call.request.body) + base64.b64decode(basic).decode()
    assert "secret-typed-into-the-admin" in sent  # the typed secret was really used

    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"Tested connection {connection.slug}:") for m in logged), logged
    assert any(m.startswith("Fetched a new Fusion access token") for m in logged), logged
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert_no_secret_in(text, secrets=(*SECRET_VALUES.values(), WEBHOOK_SECRET, "secret-typed-into-the-admin"))


def test_the_sixth_wrong_password_is_locked_out(client, settings):
    settings.AXES_ENABLED = True  # off in the test settings; on in production (AXES_FAILURE_LIMIT=5)
    User.objects.create_superuser("admin", "admin@example.com", "the-right-password")
    login = reverse("admin:login")
    attempt = {"username": "admin", "password": "wrong", "next": "/admin/"}

    answers = [client.post(login, attempt).status_code for _ in range(6)]

    assert answers[:4] == [200] * 4  # the form again, with an error
    assert answers[4:] == [429, 429]  # the fifth failure locks the login; the sixth is refused
    # Even the right password does not get in while locked out.
    right = client.post(login, {**attempt, "password": "the-right-password"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_without_throttling_the_right_password_still_works_after_failures(client, settings):
    settings.AXES_ENABLED = False
    User.objects.create_superuser("admin", "admin@example.com", "the-right-password")
    login = reverse("admin:login")
    for _ in range(6):
        client.post(login, {"username": "admin", "password": "wrong", "next": "/admin/"})
    response = client.post(login, {"username": "admin", "password": "the-right-password", "next": "/admin/"})
    assert response.status_code == 302


def test_test_connection_action_reports_each_side_in_plain_words(client, superuser, allow_local_endpoints):
    from tests.mockservers import MockCommerce, MockFusion, mock_connection, running

    with running(MockFusion(seed=1)) as fusion, running(MockCommerce(seed=1)) as commerce:
        connection = mock_connection(fusion, commerce, fusion_client_secret="not-the-fusion-secret")
        response = client.post(
            reverse("admin:connector_connection_changelist"),
            {"action": "test_connections", "_selected_action": [connection.pk]},
            follow=True,
        )
    shown = [(m.level_tag, m.message) for m in response.context["messages"]]
    fusion_message, commerce_message = shown
    assert fusion_message[0] == "error" and "refused the client id or client secret" in fusion_message[1]
    assert commerce_message[0] == "success" and commerce_message[1].startswith(f"{connection.name} — Commerce: OK")
    assert_no_secret_in(response.content.decode(), secrets=("not-the-fusion-secret", commerce.consumer_secret))
    assert AuditEvent.objects.get(action="connection.tested").user_id == superuser.pk


def test_removing_a_webhook_key_in_the_inline_is_audited(client, superuser, connection):
    key = connection.webhook_keys.get()
    data = form_data(connection, keys=[key])
    data["webhook_keys-0-DELETE"] = "on"
    response = client.post(change_url(connection), data)
    assert response.status_code == 302
    assert not WebhookKey.objects.filter(pk=key.pk).exists()
    event = AuditEvent.objects.get(action="webhook_key.deleted")
    assert (event.connection_id, event.target_id, event.data["label"]) == (connection.pk, str(key.pk), "primary")


def test_deleting_a_connection_is_audited_and_the_trail_survives_it(client, superuser, connection):
    pk = connection.pk
    response = client.post(reverse("admin:connector_connection_delete", args=[pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Connection.objects.filter(pk=pk).exists()
    event = AuditEvent.objects.get(action="connection.deleted")
    assert event.connection_id == pk and event.data["slug"] == connection.slug


def test_the_connection_page_shows_the_webhook_url_to_give_commerce(client, superuser, connection, settings):
    page = client.get(change_url(connection)).content.decode()
    assert f"http://testserver/webhooks/commerce/{connection.slug}/" in page
    settings.CONNECTOR_PUBLIC_URL = "https://connector.example.com/"
    page = client.get(change_url(connection)).content.decode()
    assert f"https://connector.example.com/webhooks/commerce/{connection.slug}/" in page
    assert "every delivery is refused until one is added" not in page
    WebhookKey.objects.filter(connection=connection).update(active=False)
    page = client.get(change_url(connection)).content.decode()
    assert "every delivery is refused until one is added" in page


def test_the_test_connection_button_reports_each_side_and_needs_change_rights(client, connection, monkeypatch):
    calls = []

    def fake_test(*, connection, actor):
        calls.append((connection.pk, str(actor)))
        return ConnectionTestResult(
            fusion=SideResult(system="Fusion", ok=True, message="signed in and read"),
            commerce=SideResult(system="Commerce", ok=False, message="the store refused the consumer key"),
        )

    monkeypatch.setattr(admin_module, "connection_test", fake_test)
    test_url = reverse("admin:connector_connection_test", args=[connection.pk])
    client.force_login(staff_user("fiona", GROUP_FINANCE))
    assert client.post(test_url).status_code == 403  # Finance may view, not test
    assert calls == []
    client.force_login(staff_user("ian", GROUP_INTEGRATION_ADMIN))
    page = client.get(change_url(connection)).content.decode()
    assert test_url in page and "Test connection" in page
    response = client.post(test_url, follow=True)
    assert calls == [(connection.pk, "ian")]
    text = response.content.decode()
    assert "Fusion: signed in and read" in text and "Commerce: the store refused the consumer key" in text
    assert client.get(test_url).status_code == 403  # only a POST runs it


def test_every_admin_page_names_the_product_and_offers_no_view_site_link(client, superuser):
    page = client.get(reverse("admin:index")).content.decode()
    assert "ml-connector" in page and "Django administration" not in page
    assert "View site" not in page


def test_help_texts_keep_their_placeholders_for_editors_and_viewers(client, superuser, connection):
    # Django's admin renders help texts as HTML: an unescaped <pod> would be swallowed as a tag.
    escaped = "https://&lt;pod&gt;.fa.&lt;dc&gt;.oraclecloud.com"
    assert escaped in client.get(change_url(connection)).content.decode()
    client.force_login(staff_user("fiona", GROUP_FINANCE))
    assert escaped in client.get(change_url(connection)).content.decode()
