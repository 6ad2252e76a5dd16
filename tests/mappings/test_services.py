import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from connector.documents import Customer, SalesDocument, SalesLine
from connector.models import Record
from connector.records import record_accept
from mappings.models import AccountTemplate, CustomerRule, ProductRule, SegmentLayout
from mappings.plans import plan_from_json, plan_preview_html, plan_to_json
from mappings.rules import resolve
from mappings.services import plan_for_record, rule_delete, rule_save, rules_snapshot
from tests.factories import make_connection
from tests.mappings import test_rules
from tests.mappings.helpers import mapped_connection

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"


def _events(action_prefix="mappings."):
    return list(AuditEvent.objects.filter(action__startswith=action_prefix).order_by("id"))


def _order(kind="order", entity_id="12345", **kw) -> SalesDocument:
    values = {
        "kind": kind,
        "entity_id": entity_id,
        "increment_id": f"0000{entity_id}",
        "created_at": datetime(2026, 3, 14, 10, tzinfo=UTC),
        "currency": "USD",
        "grand_total": D("2609.98"),
        "lines": (
            SalesLine(
                line_id="1", sku="LAP-15", name="Laptop", qty=D(2), unit_price=D("1299.99"), row_total=D("2599.98")
            ),
        ),
        "customer": Customer(commerce_id="42", email="ann@example.com", group_id="3"),
        "website_id": "1",
        "shipping_amount": D("10.00"),
    }
    values.update(kw)
    return SalesDocument(**values)


# ---------------------------------------------------------------------------------------------------------------
# Audited rule changes
# ---------------------------------------------------------------------------------------------------------------


def test_creating_a_rule_is_audited_with_its_values(admin_user):
    connection = make_connection()
    rule = rule_save(
        rule=CustomerRule(
            connection=connection, match_type="email", match_value="ann@example.com", bill_to_customer_number="1008"
        ),
        actor=admin_user,
    )
    [event] = _events()
    assert event.action == "mappings.customer.created"
    assert event.actor == admin_user.username and event.user_id == admin_user.pk
    assert event.connection_id == connection.pk
    assert (event.target_type, event.target_id) == ("mappings.customerrule", str(rule.pk))
    assert event.data["before"] is None
    assert event.data["after"]["bill_to_customer_number"] == "1008"
    assert event.data["after"]["match_value"] == "ann@example.com"


def test_changing_a_rule_is_audited_with_before_after_and_the_changed_fields():
    connection = make_connection()
    rule = rule_save(
        rule=ProductRule(connection=connection, match_type="sku", match_value="LAP-15", segments={"account": "4000"}),
        actor="alice",
    )
    rule.segments = {"account": "4110"}
    rule.effective_to = date(2026, 12, 31)
    rule_save(rule=rule, actor="bob")
    event = _events()[-1]
    assert event.action == "mappings.product.updated" and event.actor == "bob"
    assert event.data["changed"] == ["effective_to", "segments"]
    assert event.data["before"]["segments"] == {"account": "4000"}
    assert event.data["after"]["segments"] == {"account": "4110"}
    assert event.data["before"]["effective_to"] is None
    assert event.data["after"]["effective_to"] == "2026-12-31"


def test_saving_an_unchanged_rule_writes_nothing():
    connection = make_connection()
    rule = rule_save(rule=AccountTemplate(connection=connection, account_class="tax", combination="01-2200"), actor="a")
    stamp = rule.updated_at
    rule_save(rule=AccountTemplate.objects.get(pk=rule.pk), actor="a")
    assert len(_events()) == 1
    assert AccountTemplate.objects.get(pk=rule.pk).updated_at == stamp


def test_deleting_a_rule_is_audited_with_what_it_was():
    connection = make_connection()
    rule = rule_save(
        rule=CustomerRule(connection=connection, match_type="default", bill_to_customer_number="1"), actor="a"
    )
    rule_id = rule.pk
    rule_delete(rule=rule, actor="carol")
    event = _events()[-1]
    assert event.action == "mappings.customer.deleted" and event.actor == "carol"
    assert event.target_id == str(rule_id)
    assert event.data["before"]["bill_to_customer_number"] == "1" and event.data["after"] is None
    assert not CustomerRule.objects.exists()


def test_overlapping_enabled_rules_for_the_same_match_are_refused_and_nothing_is_audited():
    connection = make_connection()
    rule_save(
        rule=CustomerRule(
            connection=connection,
            match_type="customer_group",
            match_value="3",
            bill_to_customer_number="A",
            effective_to=date(2026, 6, 30),
        ),
        actor="a",
    )
    overlapping = CustomerRule(
        connection=connection,
        match_type="customer_group",
        match_value="3",
        bill_to_customer_number="B",
        effective_from=date(2026, 6, 30),
    )
    with pytest.raises(ValidationError, match="already counts"):
        rule_save(rule=overlapping, actor="a")
    # The day after the first one ends is fine, and so is a disabled overlapping row.
    rule_save(
        rule=CustomerRule(
            connection=connection,
            match_type="customer_group",
            match_value="3",
            bill_to_customer_number="B",
            effective_from=date(2026, 7, 1),
        ),
        actor="a",
    )
    rule_save(
        rule=CustomerRule(
            connection=connection,
            match_type="customer_group",
            match_value="3",
            bill_to_customer_number="C",
            effective_from=date(2026, 3, 1),
            enabled=False,
        ),
        actor="a",
    )
    assert len(_events()) == 3


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (
            lambda c: ProductRule(connection=c, match_type="sku", match_value="X", segments={"acount": "4110"}),
            "segments",
            "not a segment of this connection's layout",
        ),
        (
            lambda c: ProductRule(connection=c, match_type="sku_pattern", match_value="LAP-15"),
            "match_value",
            "needs a wildcard",
        ),
        (
            lambda c: CustomerRule(connection=c, match_type="default", match_value="x", bill_to_customer_number="1"),
            "match_value",
            "matches everything",
        ),
        (
            lambda c: CustomerRule(connection=c, match_type="email", match_value="", bill_to_customer_number="1"),
            "match_value",
            "Say what the rule matches",
        ),
        (
            lambda c: AccountTemplate(connection=c, account_class="revenue", combination="01-000"),
            "combination",
            "does not fit",
        ),
        (lambda c: AccountTemplate(connection=c, account_class="revenue"), "combination", "either"),
        (
            lambda c: SegmentLayout(connection=c, segment_names="a, b", winners={"a": "store"}),
            "winners",
            "customer, product or template",
        ),
        (
            lambda c: ProductRule(
                connection=c,
                match_type="sku",
                match_value="X",
                effective_from=date(2026, 2, 1),
                effective_to=date(2026, 1, 1),
            ),
            "effective_to",
            "before the first day",
        ),
    ],
)
def test_invalid_rules_are_refused_with_a_field_message(rule, field, message):
    connection = make_connection()
    rule_save(rule=SegmentLayout(connection=connection, segment_names="company, dept, account"), actor="a")
    with pytest.raises(ValidationError) as caught:
        rule_save(rule=rule(connection), actor="a")
    assert message in " ".join(caught.value.message_dict[field])


# ---------------------------------------------------------------------------------------------------------------
# The plan of a record
# ---------------------------------------------------------------------------------------------------------------


def test_plan_for_record_resolves_with_the_connections_current_rules():
    connection = mapped_connection(journal_mode="sales_journal")
    record = record_accept(connection=connection, document=_order()).record
    plan = plan_for_record(record)
    assert plan.ok, plan.problems
    assert plan.header.transaction_number == "MAG-000012345"
    assert plan.header.bill_to_customer_number == "1008"
    revenue = plan.distributions[0]
    assert revenue.combination == "01-000-4110-0015-20"
    assert revenue.reason == (
        "product rule sku=LAP-15 set account=4110, product=0015; customer rule group=3 set channel=20; "
        "store rule website=1 set company=01; template revenue for the rest"
    )
    assert plan.journal_balanced and plan.journal_lines

    # Fix a mapping, and the next plan uses it.
    rule = ProductRule.objects.get(match_value="LAP-15")
    rule.segments = {"account": "4120", "product": "0015"}
    rule_save(rule=rule, actor="finance")
    assert plan_for_record(record).distributions[0].combination == "01-000-4120-0015-20"


def test_a_gift_card_order_needs_a_prepayment_template_and_then_plans_to_its_grand_total():
    from commerce.payloads import order_document

    entity = json.loads((FIXTURES / "order_gift_card_tax_inclusive.json").read_text())["data"]["order"]
    connection = mapped_connection()
    # The website id the pipeline fills in from Commerce's store views (the store rule matches by website).
    document = dataclasses.replace(order_document(entity), website_id="1")
    record = record_accept(connection=connection, document=document).record
    missing = plan_for_record(record)
    assert [p.code for p in missing.problems] == ["template_missing"]
    assert "No prepayment account template" in missing.problem_reason()

    rule_save(
        rule=AccountTemplate(connection=connection, account_class="prepayment", combination="01-000-2410-0000-00"),
        actor="finance",
    )
    plan = plan_for_record(record)
    assert plan.ok, plan.problems
    assert plan.total == plan.commerce_total == D("100.00")
    assert [(ln.description, ln.amount) for ln in plan.lines if ln.kind == "prepayment"] == [
        ("Gift card", D("-25.00")),
        ("Store credit", D("-10.00")),
        ("Reward points", D("-2.70")),
    ]


def test_disabled_rules_are_left_out_of_the_snapshot():
    connection = mapped_connection()
    CustomerRule.objects.filter(match_type="default").update(enabled=False)
    snapshot = rules_snapshot(connection=connection)
    assert [r.match_type for r in snapshot.customers] == ["customer_group"]
    record = record_accept(connection=connection, document=_order(customer=Customer(email="x@example.com"))).record
    assert [p.code for p in plan_for_record(record).problems] == ["customer_mapping_missing"]


def test_an_unchanged_rule_set_is_not_read_again(django_assert_num_queries):
    connection = mapped_connection()
    first = rules_snapshot(connection=connection)
    with django_assert_num_queries(1):  # the rows' versions only
        assert rules_snapshot(connection=connection) is first


def test_a_rule_changed_any_way_is_in_the_next_snapshot():
    connection = mapped_connection()
    rules_snapshot(connection=connection)
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4999"})  # no save(), no signal
    assert {r.segments.get("Account") for r in rules_snapshot(connection=connection).products} == {"4999"}
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4110"})  # same transaction again
    assert {r.segments.get("Account") for r in rules_snapshot(connection=connection).products} == {"4110"}
    CustomerRule.objects.filter(connection=connection, match_type="default").delete()
    assert "default" not in [r.match_type for r in rules_snapshot(connection=connection).customers]


def test_a_credit_memo_plan_names_the_posted_invoice_it_credits():
    connection = mapped_connection(invoice_event="invoice")
    invoice = record_accept(
        connection=connection, document=_order(kind="invoice", entity_id="700", order_entity_id="12345")
    ).record
    Record.objects.filter(pk=invoice.pk).update(fusion_transaction_number="MAG-0000700", posted_at=datetime.now(UTC))
    memo = record_accept(
        connection=connection,
        document=_order(kind="creditmemo", entity_id="88", order_entity_id="12345", order_increment_id="000012345"),
    ).record
    plan = plan_for_record(memo)
    assert plan.is_credit_memo
    assert plan.header.original_invoice_number == "MAG-0000700"
    assert plan.header.transaction_number == "MAG-CM-000088"


# ---------------------------------------------------------------------------------------------------------------
# JSON and preview
# ---------------------------------------------------------------------------------------------------------------


def test_plan_round_trips_through_json_and_the_record_column():
    defaults = test_rules.DEFAULTS.__class__(**{**test_rules.DEFAULTS.__dict__, "journal_mode": "sales_journal"})
    plan = resolve(
        test_rules.order(test_rules.line(tax="8.00"), shipping_amount=D("5")), test_rules.ruleset(), defaults
    )
    data = plan_to_json(plan)
    assert plan_from_json(json.loads(json.dumps(data))) == plan
    assert data["lines"][0]["amount"] == "100.00"

    connection = make_connection()
    record = record_accept(connection=connection, document=_order()).record
    Record.objects.filter(pk=record.pk).update(plan=data)
    record.refresh_from_db()
    assert plan_from_json(record.plan) == plan


def test_plan_with_conversion_and_problems_round_trips():
    stores = [test_rules.StoreRuleData("default", "", currency_mode="convert", conversion_rate_type="User")]
    doc = test_rules.order(currency="EUR", base_currency="USD", base_to_order_rate=D("0.8"), grand_total="1")
    plan = resolve(doc, test_rules.ruleset(stores=stores, customers=[]), test_rules.DEFAULTS)
    assert plan.header.conversion is not None and len(plan.problems) == 2
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


def test_preview_shows_accounts_reasons_and_problems_escaped():
    connection = mapped_connection()
    doc = _order(
        lines=(
            SalesLine(
                line_id="1", sku="<b>LAP-15</b>", name="Laptop & bag", qty=D(1), unit_price=D("10"), row_total=D("10")
            ),
        ),
        grand_total=D("20.00"),
    )
    ProductRule.objects.filter(match_type="default").delete()
    record = record_accept(connection=connection, document=doc).record
    html = plan_preview_html(plan_for_record(record))
    assert "No product rule matches SKU &lt;b&gt;LAP-15&lt;/b&gt;" in html
    assert "<b>LAP-15</b>" not in html
    assert "Resolution: Add a product rule" in html
    assert "Laptop &amp; bag" in html
    assert "customer rule group=3 set channel=20" in html
    assert "MAG-000012345" in html


def test_preview_of_a_ready_plan_says_so():
    connection = mapped_connection()
    plan = plan_for_record(record_accept(connection=connection, document=_order()).record)
    html = plan_preview_html(plan)
    assert "Ready to post" in html
    assert "01-000-4110-0015-20" in html
    assert "2609.98" in html


@pytest.mark.parametrize("effective_from", [None, date(2026, 1, 1)])
def test_the_database_refuses_a_second_rule_with_the_same_match_and_start(effective_from):
    from django.db import IntegrityError, transaction

    connection = make_connection()
    values = {"connection": connection, "match_type": "sku", "match_value": "LAP-15", "effective_from": effective_from}
    ProductRule.objects.create(**values)
    with pytest.raises(ValidationError, match="already exists"):
        ProductRule(**{**values, "match_value": "lap-15", "enabled": False}).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductRule.objects.create(**{**values, "match_value": "lap-15", "enabled": False})


def test_preview_shows_the_tax_mode_the_freight_mode_and_each_lines_tax_lines():
    connection = mapped_connection(freight_mode="header")
    line = SalesLine(
        line_id="1",
        sku="LAP-15",
        name="Laptop",
        qty=D(1),
        unit_price=D("100.00"),
        row_total=D("100.00"),
        tax=D("20.00"),
        tax_percent=D("20"),
    )
    document = _order(lines=(line,), grand_total=D("130.00"))
    html = plan_preview_html(plan_for_record(record_accept(connection=connection, document=document).record))
    assert "Ready to post" in html
    assert "At the header (FreightAmount) with its Freight distribution: 10.00" in html
    assert "Manual tax lines: Commerce's tax amounts with the tax rules' regime and rate codes" in html
    assert "FUS_STCC_REGIME-UES / VAT20" in html and "VAT20" in html
    assert "Lines 100.00 + freight 10.00 + tax 20.00 = 130.00 USD" in html
    connection.tax_mode = "fusion"
    connection.save()
    fusion = plan_preview_html(
        plan_for_record(
            record_accept(
                connection=connection, document=_order("o", "2", lines=(line,), grand_total=D("130.00"))
            ).record
        )
    )
    assert "Fusion computes the tax from each line's tax classification code" in fusion
