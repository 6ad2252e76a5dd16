import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from mappings.models import CustomerRule, ProductRule
from tests.mappings.helpers import mapped_connection

pytestmark = pytest.mark.django_db


def _rule_form(connection, **overrides):
    data = {
        "connection": connection.pk,
        "match_type": "email",
        "match_value": "ann@example.com",
        "bill_to_customer_number": "1008",
        "bill_to_site": "1042",
        "segments": "channel=30",
        "effective_from": "",
        "effective_to": "",
        "enabled": "on",
        "notes": "",
    }
    data.update(overrides)
    return data


def test_finance_adds_a_rule_in_the_admin_and_the_change_is_audited(admin_client, admin_user):
    connection = mapped_connection()
    response = admin_client.post(reverse("admin:mappings_customerrule_add"), _rule_form(connection))
    assert response.status_code == 302, response.content
    rule = CustomerRule.objects.get(match_type="email")
    assert rule.segments == {"channel": "30"}
    event = AuditEvent.objects.get(action="mappings.customer.created", target_id=str(rule.pk))
    assert event.actor == admin_user.username and event.data["via"] == "admin"

    page = admin_client.get(reverse("admin:mappings_customerrule_change", args=[rule.pk]))
    assert 'value="channel=30"' in page.content.decode()


def test_segment_values_that_do_not_parse_or_fit_the_layout_are_form_errors(admin_client):
    connection = mapped_connection()
    for text, message in (("channel 30", "is not name=value"), ("chanel=30", "is not a segment")):
        response = admin_client.post(reverse("admin:mappings_customerrule_add"), _rule_form(connection, segments=text))
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not CustomerRule.objects.filter(match_type="email").exists()


def test_deleting_rules_in_the_admin_is_audited(admin_client):
    connection = mapped_connection()
    rules = list(ProductRule.objects.filter(connection=connection))
    response = admin_client.post(
        reverse("admin:mappings_productrule_changelist"),
        {"action": "delete_selected", "_selected_action": [r.pk for r in rules], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ProductRule.objects.filter(connection=connection).exists()
    deleted = AuditEvent.objects.filter(action="mappings.product.deleted")
    assert sorted(int(e.target_id) for e in deleted) == sorted(r.pk for r in rules)


def _upload(admin_client, content: bytes):
    return admin_client.post(
        reverse("admin:mappings_customerrule_import"),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("rules.csv", content, "text/csv")},
    )


def test_admin_import_shows_row_errors_and_offers_no_confirmation(admin_client):
    connection = mapped_connection()
    content = (
        "connection,match_type,match_value,bill_to_customer_number\n"
        f"{connection.slug},email,new@example.com,2000\n"
        f"{connection.slug},company,,2001\n"
    ).encode()
    response = _upload(admin_client, content)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Say what the rule matches" in html
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert not CustomerRule.objects.filter(match_value="new@example.com").exists()


def test_admin_import_dry_run_then_confirm_saves_and_audits(admin_client, admin_user):
    connection = mapped_connection()
    content = (
        "connection,match_type,match_value,bill_to_customer_number,segments\n"
        f"{connection.slug},email,new@example.com,2000,channel=40\n"
    ).encode()
    response = _upload(admin_client, content)
    assert response.status_code == 200
    assert not CustomerRule.objects.filter(match_value="new@example.com").exists()  # dry run only
    confirm = response.context["confirm_form"]
    assert confirm is not None
    response = admin_client.post(reverse("admin:mappings_customerrule_process_import"), confirm.initial)
    assert response.status_code == 302
    rule = CustomerRule.objects.get(match_value="new@example.com")
    assert rule.segments == {"channel": "40"}
    event = AuditEvent.objects.get(action="mappings.customer.created", target_id=str(rule.pk))
    assert event.actor == admin_user.username and event.data["via"] == "import"


def test_admin_export_gives_the_command_line_format(admin_client):
    connection = mapped_connection()
    response = admin_client.post(
        reverse("admin:mappings_productrule_export"),
        {
            "format": "0",
            "resource": "0",
            **{
                f"productruleresource_{f}": "on"
                for f in (
                    "kind",
                    "connection",
                    "match_type",
                    "match_value",
                    "item_number",
                    "memo_line",
                    "segments",
                    "effective_from",
                    "effective_to",
                    "enabled",
                    "notes",
                )
            },
        },
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert text.splitlines()[0].startswith("kind,connection,match_type,match_value")
    assert f"product,{connection.slug},sku,LAP-15,LAPTOP-15,,account=4110; product=0015,2026-01-01" in text


def test_a_user_who_may_only_view_rules_cannot_import_them(client, django_user_model):
    from django.contrib.auth.models import Permission

    connection = mapped_connection()
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customerrule"))
    client.force_login(viewer)
    listing = client.get(reverse("admin:mappings_customerrule_changelist"))
    assert listing.status_code == 200
    assert reverse("admin:mappings_customerrule_import") not in listing.content.decode()  # no Import button
    assert client.get(reverse("admin:mappings_customerrule_import")).status_code == 403
    content = f"connection,match_type,match_value,bill_to_customer_number\n{connection.slug},email,x@y.z,1\n"
    response = client.post(
        reverse("admin:mappings_customerrule_import"),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("r.csv", content.encode(), "text/csv")},
    )
    assert response.status_code == 403
    assert not CustomerRule.objects.filter(match_type="email").exists()


def test_finance_adds_a_tax_rule_in_the_admin_audited_and_listed(admin_client, admin_user):
    from mappings.models import TaxRule

    connection = mapped_connection()
    data = {
        "connection": connection.pk,
        "match_type": "rate",
        "match_value": "8.25",
        "country": "us",
        "tax_regime_code": "US SALES AND USE TAX",
        "tax": "",
        "tax_status_code": "",
        "tax_rate_code": "STD",
        "tax_jurisdiction_code": "",
        "tax_classification_code": "US_STD",
        "effective_from": "",
        "effective_to": "",
        "enabled": "on",
        "notes": "",
    }
    response = admin_client.post(reverse("admin:mappings_taxrule_add"), data)
    assert response.status_code == 302, response.content
    rule = TaxRule.objects.get(match_type="rate")
    assert (rule.country, rule.tax_rate_code) == ("US", "STD")
    assert AuditEvent.objects.filter(action="mappings.tax.created", target_id=str(rule.pk)).exists()
    listing = admin_client.get(reverse("admin:mappings_taxrule_changelist")).content.decode()
    assert "US SALES AND USE TAX" in listing and "US_STD" in listing
    refused = admin_client.post(
        reverse("admin:mappings_taxrule_add"), {**data, "match_value": "7", "tax_rate_code": ""}
    )
    assert refused.status_code == 200 and "give both" in refused.content.decode()
