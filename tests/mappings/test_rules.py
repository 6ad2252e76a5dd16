"""The resolver, without a database: precedence, overlay, effective dates, money and missing mappings."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from connector.documents import Customer, SalesDocument, SalesLine
from mappings.rules import (
    TEMPLATE_CLASSES,
    AccountTemplateData,
    ConnectionDefaults,
    CustomerRuleData,
    ProductRuleData,
    RuleSet,
    SegmentLayoutData,
    StoreRuleData,
    TaxRuleData,
    format_segment_values,
    parse_segment_values,
    price_line,
    resolve,
)

LAYOUT = SegmentLayoutData(("company", "dept", "account", "product", "channel"))
TEMPLATES = (
    AccountTemplateData("revenue", "01-000-4000-0000-00"),
    AccountTemplateData("receivable", "01-000-1210-0000-00"),
    AccountTemplateData("freight", "01-000-4510-0000-00"),
    AccountTemplateData("tax", "01-000-2200-0000-00"),
    AccountTemplateData("discount", "01-000-4900-0000-00"),
    AccountTemplateData("rounding", "01-000-7990-0000-00"),
    AccountTemplateData("clearing", "01-000-1990-0000-00"),
    AccountTemplateData("prepayment", "01-000-2410-0000-00"),
)
DEFAULT_CUSTOMER = CustomerRuleData("default", "", "WEB-1000", "WEB-SITE")
DEFAULT_PRODUCT = ProductRuleData("default", "", segments={"product": "9999"})
DEFAULT_TAX = TaxRuleData(
    "default", "", tax_regime_code="US SALES AND USE TAX", tax_rate_code="STD", tax_classification_code="US_STD"
)
DEFAULTS = ConnectionDefaults(
    slug="shop",
    business_unit="Vision Operations",
    transaction_source="COMMERCE_WEB",
    transaction_number_prefix="MAG-",
    ledger_currency="USD",
    time_zone="UTC",
)


def line(sku="LAP-15", qty="1", price="100.00", discount="0", tax="0", **kw) -> SalesLine:
    qty_d, price_d = D(qty), D(price)
    return SalesLine(
        line_id=kw.pop("line_id", sku),
        sku=sku,
        name=kw.pop("name", "Laptop"),
        qty=qty_d,
        unit_price=price_d,
        row_total=kw.pop("row_total", qty_d * price_d),
        discount=D(discount),
        tax=D(tax),
        **kw,
    )


def order(*lines: SalesLine, customer: Customer | None = None, grand_total=None, **kw) -> SalesDocument:
    lines = lines or (line(),)
    total = sum((ln.row_total - ln.discount + ln.tax for ln in lines), D(0))
    total += kw.get("shipping_amount", D(0)) - kw.get("shipping_discount", D(0)) + kw.get("shipping_tax", D(0))
    total += kw.get("adjustment_positive", D(0)) - kw.get("adjustment_negative", D(0))
    values = {
        "kind": "order",
        "entity_id": "12345",
        "increment_id": "000012345",
        "created_at": datetime(2026, 3, 14, 10, 0, tzinfo=UTC),
        "currency": "USD",
        "grand_total": total if grand_total is None else D(grand_total),
        "lines": lines,
        "customer": customer or Customer(commerce_id="42", email="ann@example.com", group_id="1"),
    }
    values.update(kw)
    return SalesDocument(**values)


def ruleset(
    customers=(DEFAULT_CUSTOMER,),
    products=(DEFAULT_PRODUCT,),
    stores=(),
    templates=TEMPLATES,
    layouts=(LAYOUT,),
    taxes=(DEFAULT_TAX,),
) -> RuleSet:
    return RuleSet(tuple(customers), tuple(products), tuple(stores), tuple(templates), tuple(layouts), tuple(taxes))


def revenue(plan, line_number=1):
    return next(d for d in plan.distributions if d.account_class == "Revenue" and d.line_number == line_number)


# ---------------------------------------------------------------------------------------------------------------
# Customer precedence
# ---------------------------------------------------------------------------------------------------------------

ALL_CUSTOMER_RULES = (
    CustomerRuleData("customer_id", "42", "C-ID"),
    CustomerRuleData("email", "Ann@Example.com", "C-EMAIL"),
    CustomerRuleData("company", "Acme Corp", "C-COMPANY"),
    CustomerRuleData("customer_group", "3", "C-GROUP"),
    CustomerRuleData("default", "", "C-DEFAULT"),
)


@pytest.mark.parametrize(
    ("customer", "rule_types", "expected", "why"),
    [
        (
            Customer(commerce_id="42", email="ann@example.com", group_id="3", company="Acme Corp"),
            None,
            "C-ID",
            "customer rule customer=42",
        ),
        (
            Customer(commerce_id="7", email="ANN@example.COM", group_id="3", company="Acme Corp"),
            None,
            "C-EMAIL",
            "customer rule email=Ann@Example.com",
        ),
        (
            Customer(commerce_id="7", email="bob@example.com", group_id="3", company="acme corp"),
            None,
            "C-COMPANY",
            "customer rule company=Acme Corp",
        ),
        (Customer(commerce_id="7", email="bob@example.com", group_id="3"), None, "C-GROUP", "customer rule group=3"),
        (Customer(commerce_id="7", email="bob@example.com", group_id="1"), None, "C-DEFAULT", "customer rule default"),
        # A guest's (empty or stale) customer id never matches; the email still does.
        (
            Customer(commerce_id="42", email="ann@example.com", is_guest=True),
            None,
            "C-EMAIL",
            "customer rule email=Ann@Example.com",
        ),
        # Only the lower tiers configured.
        (
            Customer(commerce_id="42", email="ann@example.com", group_id="3"),
            {"customer_group", "default"},
            "C-GROUP",
            "customer rule group=3",
        ),
    ],
)
def test_customer_rules_apply_in_precedence_order(customer, rule_types, expected, why):
    rules = [r for r in ALL_CUSTOMER_RULES if rule_types is None or r.match_type in rule_types]
    plan = resolve(order(customer=customer), ruleset(customers=rules), DEFAULTS)
    assert plan.ok, plan.problems
    assert plan.header.bill_to_customer_number == expected
    assert plan.header.bill_to_reason == why


def test_missing_customer_mapping_is_a_problem_with_a_reason_and_a_resolution():
    customer = Customer(commerce_id="42", email="ann@example.com", group_id="3", company="Acme Corp")
    plan = resolve(
        order(customer=customer), ruleset(customers=[CustomerRuleData("customer_group", "9", "X")]), DEFAULTS
    )
    assert not plan.ok
    [problem] = plan.problems
    assert problem.code == "customer_mapping_missing"
    assert problem.message == (
        "No customer rule matches customer 42 (email ann@example.com, group 3, company Acme Corp) and there is "
        "no default customer rule."
    )
    assert "Mappings > Customer rules" in problem.resolution
    assert plan.problem_hint().startswith("Resolution: Add a customer rule")
    assert plan.header.bill_to_customer_number == ""


# ---------------------------------------------------------------------------------------------------------------
# Product precedence
# ---------------------------------------------------------------------------------------------------------------

PRODUCT_RULES = (
    ProductRuleData("sku", "LAP-15", item_number="IT-SKU", segments={"account": "4101"}),
    ProductRuleData("sku_pattern", "LAP-*", item_number="IT-PAT", segments={"account": "4102"}),
    ProductRuleData("sku_pattern", "LAP-1*", item_number="IT-PAT-NARROW", segments={"account": "4103"}),
    ProductRuleData("attribute_set", "4", item_number="IT-SET", segments={"account": "4104"}),
    ProductRuleData("category", "7", item_number="IT-CAT7", segments={"account": "4105"}),
    ProductRuleData("category", "9", item_number="IT-CAT9", segments={"account": "4106"}),
    ProductRuleData("default", "", item_number="IT-DEFAULT", segments={"account": "4107"}),
)


@pytest.mark.parametrize(
    ("sku", "extra", "expected", "why"),
    [
        ("LAP-15", {}, "IT-SKU", "product rule sku=LAP-15"),
        ("lap-15", {}, "IT-SKU", "product rule sku=LAP-15"),
        ("LAP-17", {}, "IT-PAT-NARROW", "product rule pattern=LAP-1*"),
        ("LAP-20", {}, "IT-PAT", "product rule pattern=LAP-*"),
        ("LAP-15-BLUE", {"parent_sku": "LAP-15"}, "IT-SKU", "product rule sku=LAP-15 (parent of LAP-15-BLUE)"),
        ("MOUSE", {"attribute_set_id": "4", "category_ids": ("7",)}, "IT-SET", "product rule attribute set=4"),
        ("MOUSE", {"attribute_set_id": "5", "category_ids": ("3", "9", "7")}, "IT-CAT9", "product rule category=9"),
        ("MOUSE", {"attribute_set_id": "5", "category_ids": ("3",)}, "IT-DEFAULT", "product rule default"),
    ],
)
def test_product_rules_apply_in_precedence_order(sku, extra, expected, why):
    plan = resolve(order(line(sku=sku, **extra)), ruleset(products=PRODUCT_RULES), DEFAULTS)
    assert plan.ok, plan.problems
    assert plan.lines[0].item_number == expected
    assert plan.lines[0].reason == why
    assert revenue(plan).reason.startswith(why + " set account=41")


def test_missing_product_mapping_names_the_sku_and_the_fix():
    plan = resolve(
        order(line(sku="CHAIR-1", attribute_set_id="12", category_ids=("5", "8"))),
        ruleset(products=[ProductRuleData("sku", "LAP-15")]),
        DEFAULTS,
    )
    [problem] = plan.problems
    assert problem.code == "product_mapping_missing"
    assert problem.message == (
        "No product rule matches SKU CHAIR-1 (attribute set 12, categories 5, 8) and there is no default product rule."
    )
    assert "Mappings > Product rules" in problem.resolution
    assert "replay" in plan.problem_hint()


def test_with_autoaccounting_and_no_journal_a_missing_product_rule_is_not_a_problem():
    defaults = dataclasses.replace(DEFAULTS, distributions="auto", journal_mode="none")
    plan = resolve(order(), ruleset(products=[], templates=[], layouts=[]), defaults)
    assert plan.ok, plan.problems
    assert plan.distributions == ()
    assert plan.journal_lines == ()


# ---------------------------------------------------------------------------------------------------------------
# Effective dates (the document date is taken in the connection's time zone)
# ---------------------------------------------------------------------------------------------------------------

DOC_DAY = date(2026, 3, 14)


@pytest.mark.parametrize(
    ("effective_from", "effective_to", "enabled", "counts"),
    [
        (None, None, True, True),
        (DOC_DAY, None, True, True),  # first day inclusive
        (None, DOC_DAY, True, True),  # last day inclusive
        (date(2026, 3, 15), None, True, False),  # not yet
        (None, date(2026, 3, 13), True, False),  # ended yesterday
        (None, None, False, False),  # disabled
    ],
)
def test_only_rules_effective_on_the_document_date_count(effective_from, effective_to, enabled, counts):
    dated = CustomerRuleData(
        "customer_id", "42", "DATED", effective_from=effective_from, effective_to=effective_to, enabled=enabled
    )
    plan = resolve(order(), ruleset(customers=[dated, DEFAULT_CUSTOMER]), DEFAULTS)
    assert plan.header.bill_to_customer_number == ("DATED" if counts else "WEB-1000")


def test_the_rule_that_took_effect_last_wins_within_a_tier():
    old = ProductRuleData("sku", "LAP-15", segments={"account": "4000"}, effective_from=date(2025, 1, 1))
    new = ProductRuleData("sku", "LAP-15", segments={"account": "4111"}, effective_from=date(2026, 1, 1))
    plan = resolve(order(), ruleset(products=[new, old]), DEFAULTS)
    assert revenue(plan).combination == "01-000-4111-0000-00"


def test_document_date_is_the_local_date_of_the_connection_time_zone():
    # 23:30 UTC on 31 December is already 1 January in Paris.
    doc = order(created_at=datetime(2025, 12, 31, 23, 30, tzinfo=UTC))
    new_year = CustomerRuleData("customer_id", "42", "NEW-YEAR", effective_from=date(2026, 1, 1))
    paris = dataclasses.replace(DEFAULTS, time_zone="Europe/Paris")
    plan = resolve(doc, ruleset(customers=[new_year, DEFAULT_CUSTOMER]), paris)
    assert plan.header.transaction_date == plan.header.accounting_date == date(2026, 1, 1)
    assert plan.header.bill_to_customer_number == "NEW-YEAR"
    utc_plan = resolve(doc, ruleset(customers=[new_year, DEFAULT_CUSTOMER]), DEFAULTS)
    assert utc_plan.header.transaction_date == date(2025, 12, 31)
    assert utc_plan.header.bill_to_customer_number == "WEB-1000"


def test_an_expired_template_is_a_missing_template():
    templates = [
        t if t.account_class != "revenue" else dataclasses.replace(t, effective_to=date(2026, 3, 1)) for t in TEMPLATES
    ]
    plan = resolve(order(), ruleset(templates=templates), DEFAULTS)
    assert [p.code for p in plan.problems] == ["template_missing"]
    assert plan.problems[0].message == "No revenue account template is effective on 2026-03-14."
    assert revenue(plan).combination == ""


# ---------------------------------------------------------------------------------------------------------------
# Overlay: template, then store legal entity, then customer and product with a configurable winner
# ---------------------------------------------------------------------------------------------------------------


def test_reason_names_each_rule_and_the_segments_it_set():
    customers = [CustomerRuleData("customer_group", "3", "1008", segments={"channel": "20"})]
    products = [ProductRuleData("sku", "LAP-15", segments={"account": "4110"})]
    doc = order(customer=Customer(commerce_id="42", group_id="3"))
    plan = resolve(doc, ruleset(customers=customers, products=products), DEFAULTS)
    dist = revenue(plan)
    assert dist.combination == "01-000-4110-0000-20"
    assert dist.segment_values == ("01", "000", "4110", "0000", "20")
    assert (
        dist.reason == "product rule sku=LAP-15 set account=4110; customer rule group=3 set channel=20; "
        "template revenue for the rest"
    )


@pytest.mark.parametrize(
    ("winners", "expected_account", "note"),
    [
        ({}, "4110", "customer wanted account=4999, product wins account"),
        ({"account": "product"}, "4110", "customer wanted account=4999, product wins account"),
        ({"account": "customer"}, "4999", "product wanted account=4110, customer wins account"),
        ({"account": "template"}, "4000", "customer/product value for account ignored"),
    ],
)
def test_the_configured_dimension_wins_a_segment_both_set(winners, expected_account, note):
    customers = [CustomerRuleData("default", "", "1008", segments={"account": "4999"})]
    products = [ProductRuleData("sku", "LAP-15", segments={"account": "4110"})]
    layout = dataclasses.replace(LAYOUT, winners=winners)
    plan = resolve(order(), ruleset(customers=customers, products=products, layouts=[layout]), DEFAULTS)
    dist = revenue(plan)
    assert dist.segment_values[2] == expected_account
    assert note in dist.reason


def test_header_level_accounts_take_customer_and_store_values_but_not_product_values():
    customers = [CustomerRuleData("default", "", "1008", segments={"channel": "20"})]
    products = [ProductRuleData("default", "", segments={"account": "4110", "product": "15"})]
    stores = [StoreRuleData("website", "2", segments={"company": "02"})]
    plan = resolve(order(website_id="2"), ruleset(customers=customers, products=products, stores=stores), DEFAULTS)
    receivable = next(d for d in plan.distributions if d.account_class == "Receivable")
    assert receivable.combination == "02-000-1210-0000-20"
    assert receivable.line_number is None
    assert revenue(plan).combination == "02-000-4110-15-20"
    assert "store rule website=2 set company=02" in receivable.reason


def test_template_given_as_segment_values_equals_the_concatenated_form():
    as_dict = [
        AccountTemplateData(
            t.account_class, segments=dict(zip(LAYOUT.segment_names, t.combination.split("-"), strict=True))
        )
        for t in TEMPLATES
    ]
    a = resolve(order(), ruleset(templates=as_dict), DEFAULTS)
    b = resolve(order(), ruleset(), DEFAULTS)
    assert [d.combination for d in a.distributions] == [d.combination for d in b.distributions]


@pytest.mark.parametrize(
    ("templates", "layouts", "code"),
    [
        ([AccountTemplateData(c, "01-000-4000") for c in TEMPLATE_CLASSES], [LAYOUT], "template_invalid"),
        ([AccountTemplateData(c, segments={"company": "01"}) for c in TEMPLATE_CLASSES], [LAYOUT], "segment_missing"),
        (TEMPLATES, [], "segment_layout_missing"),
    ],
)
def test_unusable_templates_or_layouts_are_problems(templates, layouts, code):
    plan = resolve(order(), ruleset(templates=templates, layouts=layouts), DEFAULTS)
    assert code in {p.code for p in plan.problems}
    assert all(p.resolution for p in plan.problems)
    assert revenue(plan).combination == ""


# ---------------------------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------------------------


def test_header_uses_the_store_rule_and_falls_back_to_the_connection():
    stores = [StoreRuleData("store_code", "fr", business_unit="Vision France", transaction_source="COMMERCE_FR")]
    doc = order(store_code="fr", purchase_order_number="PO-77")
    plan = resolve(doc, ruleset(stores=stores), DEFAULTS)
    h = plan.header
    assert (h.business_unit, h.transaction_source, h.transaction_type) == ("Vision France", "COMMERCE_FR", "Invoice")
    assert h.transaction_number == "MAG-000012345"
    assert h.purchase_order == "PO-77"
    assert h.payment_terms == "Immediate"
    assert h.cross_reference == "commerce-order-12345"
    assert h.comments == "Adobe Commerce order 000012345"
    assert h.store_reason == "store rule store code=fr"
    other = resolve(order(store_code="de"), ruleset(stores=stores), DEFAULTS).header
    assert other.business_unit == "Vision Operations" and other.store_reason == "connection defaults"


def test_missing_business_unit_is_a_problem():
    plan = resolve(order(), ruleset(), dataclasses.replace(DEFAULTS, business_unit=""))
    assert [p.code for p in plan.problems] == ["posting_default_missing"]


@pytest.mark.parametrize(
    ("mode", "rate_type", "connection_type", "base", "rate", "expected"),
    [
        # The default mode sends the conversion too: the connection's rate type (Corporate unless it says).
        ("order", "", "Corporate", "USD", "0.9", ("Corporate", None)),
        ("order", "", "", "USD", "0.9", ("Corporate", None)),
        ("order", "", "Spot", "USD", "0.9", ("Spot", None)),
        ("convert", "Corporate", "Spot", "USD", "0.9", ("Corporate", None)),
        ("convert", "User", "Corporate", "USD", "0.8", ("User", D("1.2500000000"))),
        ("order", "", "User", "USD", "0.8", ("User", D("1.2500000000"))),
    ],
)
def test_a_foreign_currency_document_names_its_conversion(mode, rate_type, connection_type, base, rate, expected):
    stores = [StoreRuleData("default", "", currency_mode=mode, conversion_rate_type=rate_type)]
    doc = order(currency="EUR", base_currency=base, base_to_order_rate=D(rate))
    defaults = dataclasses.replace(DEFAULTS, conversion_rate_type=connection_type)
    plan = resolve(doc, ruleset(stores=stores), defaults)
    assert plan.ok, plan.problems
    assert plan.header.currency == "EUR"
    conversion = plan.header.conversion
    assert (conversion.rate_type, conversion.rate) == expected
    assert conversion.conversion_date == plan.header.accounting_date


def test_the_store_rules_ledger_currency_decides_whether_to_convert():
    stores = [StoreRuleData("default", "", ledger_currency="EUR")]
    assert resolve(order(currency="EUR"), ruleset(stores=stores), DEFAULTS).header.conversion is None
    usd = resolve(order(currency="USD"), ruleset(stores=stores), DEFAULTS).header.conversion
    assert usd is not None and usd.rate_type == "Corporate"


def test_user_rate_without_a_commerce_rate_from_the_ledger_currency_is_a_problem():
    stores = [StoreRuleData("default", "", currency_mode="convert", conversion_rate_type="User")]
    plan = resolve(
        order(currency="EUR", base_currency="GBP", base_to_order_rate=D("1.1")), ruleset(stores=stores), DEFAULTS
    )
    assert [p.code for p in plan.problems] == ["conversion_rate_missing"]


def test_same_currency_needs_no_conversion():
    stores = [StoreRuleData("default", "", currency_mode="convert", conversion_rate_type="Corporate")]
    assert resolve(order(), ruleset(stores=stores), DEFAULTS).header.conversion is None


def test_credit_memo_has_the_same_shape_with_the_original_invoice_reference():
    doc = order(
        kind="creditmemo",
        entity_id="55",
        increment_id="000000055",
        order_entity_id="12345",
        order_increment_id="000012345",
    )
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert plan.ok and plan.is_credit_memo
    h = plan.header
    assert h.transaction_type == "Credit Memo"
    assert h.transaction_number == "MAG-CM-000000055"
    assert h.original_invoice_number == "MAG-000012345"
    assert h.comments == "Adobe Commerce credit memo 000000055 for order 000012345; credits invoice MAG-000012345"
    assert h.payment_terms == ""
    assert all(line.amount > 0 for line in plan.lines)
    given = resolve(doc, ruleset(), DEFAULTS, original_invoice_number="MAG-INV-9").header
    assert given.original_invoice_number == "MAG-INV-9"


def test_credit_memo_adjustments_are_lines_and_the_total_matches():
    doc = order(kind="creditmemo", adjustment_positive=D("5.00"), adjustment_negative=D("2.50"))
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.amount) for ln in plan.lines[1:]] == [("adjustment", D("5.00")), ("adjustment", D("-2.50"))]
    assert plan.total == plan.commerce_total == D("102.50")


# ---------------------------------------------------------------------------------------------------------------
# Money: lines, discounts, shipping, tax, rounding, journals
# ---------------------------------------------------------------------------------------------------------------


def test_net_discount_mode_books_each_line_net_of_its_discount():
    doc = order(
        line(qty="2", price="50.00", discount="10.00", tax="18.00"),
        shipping_amount=D("5.00"),
        shipping_discount=D("1.00"),
        shipping_tax=D("0.80"),
    )
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    # The shipping is allocated to the line (AllocatedFreightAmount), its tax joins the line's tax lines.
    assert [
        (ln.kind, ln.quantity, ln.unit_selling_price, ln.amount, ln.freight_amount, ln.tax_amount) for ln in plan.lines
    ] == [("item", D("2"), D("45.00"), D("90.00"), D("4.00"), D("18.80"))]
    assert plan.total == doc.grand_total == D("112.80")
    classes = [(d.account_class, d.line_number, d.amount) for d in plan.distributions]
    assert classes == [
        ("Revenue", 1, D("90.00")),
        ("Tax", 1, D("18.00")),
        ("Freight", 1, D("4.00")),
        ("Tax", 1, D("0.80")),
        ("Receivable", None, D("112.80")),
    ]


def test_header_freight_mode_puts_the_shipping_on_the_header_with_a_freight_distribution_without_a_line():
    doc = order(line(qty="2", price="50.00", tax="20.00"), shipping_amount=D("5.00"), shipping_tax=D("1.00"))
    plan = resolve(doc, ruleset(), dataclasses.replace(DEFAULTS, freight_mode="header"))
    assert plan.ok, plan.problems
    assert (plan.freight_mode, plan.header_freight, plan.lines[0].freight_amount) == ("header", D("5.00"), D(0))
    assert ("Freight", None, D("5.00")) in [(d.account_class, d.line_number, d.amount) for d in plan.distributions]
    assert plan.total == doc.grand_total == D("126.00")


def test_allocated_freight_is_spread_by_line_amount_with_the_cents_on_the_last_line():
    doc = order(
        line(sku="A", qty="1", price="10.00"),
        line(sku="B", qty="1", price="10.00"),
        line(sku="C", qty="1", price="10.00"),
        shipping_amount=D("10.00"),
    )
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert [ln.freight_amount for ln in plan.lines] == [D("3.33"), D("3.33"), D("3.34")]
    assert plan.freight_total == D("10.00") and plan.total == doc.grand_total


def test_separate_discount_mode_adds_discount_lines_on_the_discount_template():
    doc = order(line(qty="2", price="50.00", discount="10.00"), shipping_amount=D("5.00"), shipping_discount=D("1.00"))
    plan = resolve(doc, ruleset(), dataclasses.replace(DEFAULTS, discount_mode="separate"))
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.amount, ln.freight_amount) for ln in plan.lines] == [
        ("item", D("100.00"), D("5.00")),
        ("discount", D("-10.00"), D(0)),
        ("discount", D("-1.00"), D(0)),
    ]
    discount = revenue(plan, 2)
    assert discount.combination == "01-000-4900-9999-00"
    assert "template discount" in discount.reason
    assert plan.total == doc.grand_total


def test_sales_journal_debits_clearing_and_credits_revenue_freight_and_tax():
    doc = order(line(qty="1", price="100.00", discount="20.00", tax="8.00"), shipping_amount=D("5.00"))
    defaults = dataclasses.replace(DEFAULTS, journal_mode="sales_journal", discount_mode="separate")
    plan = resolve(doc, ruleset(), defaults)
    assert plan.ok, plan.problems
    rows = [(j.combination, j.entered_dr, j.entered_cr) for j in plan.journal_lines]
    assert rows == [
        ("01-000-1990-0000-00", D("93.00"), None),  # clearing
        ("01-000-4000-9999-00", None, D("100.00")),  # revenue
        ("01-000-2200-0000-00", None, D("8.00")),  # tax
        ("01-000-4900-9999-00", D("20.00"), None),  # discount: a negative credit is a debit
        ("01-000-4510-0000-00", None, D("5.00")),  # freight
    ]
    assert plan.journal_balanced and plan.journal_debits == D("113.00")
    assert all(j.description.startswith("MAG-000012345 ") and j.reason for j in plan.journal_lines)


def test_journal_mode_none_makes_no_journal_lines():
    assert resolve(order(), ruleset(), DEFAULTS).journal_lines == ()


def test_a_residue_within_one_minor_unit_per_line_goes_to_a_rounding_line():
    # Commerce rounded each line's total (33.335 + 2.6668 -> 36.00); per amount we get 33.34 + 2.67 = 36.01.
    doc = order(line(qty="1", price="33.335", tax="2.6668"), grand_total="36.00")
    plan = resolve(doc, ruleset(), dataclasses.replace(DEFAULTS, journal_mode="sales_journal"))
    assert plan.ok, plan.problems
    rounding = plan.lines[-1]
    assert (rounding.kind, rounding.amount) == ("rounding", D("-0.01"))
    assert revenue(plan, rounding.line_number).combination == "01-000-7990-0000-00"
    assert plan.total == D("36.00")
    assert plan.journal_balanced


def test_a_larger_difference_is_a_totals_problem_with_the_numbers():
    plan = resolve(order(grand_total="101.50"), ruleset(), DEFAULTS)
    assert [p.code for p in plan.problems] == ["totals_mismatch"]
    assert plan.problems[0].message == "totals do not match: plan 100.00, Commerce 101.50, difference -1.50 USD."
    assert plan.problem_hint().startswith("Resolution: ")


@pytest.mark.parametrize(
    ("currency", "price", "expected"),
    [("JPY", "1234.4", D("1234")), ("KWD", "1.2345", D("1.235")), ("USD", "1.005", D("1.01"))],
)
def test_amounts_are_quantised_to_the_currency(currency, price, expected):
    doc = order(line(price=price), currency=currency, grand_total=str(expected))
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert plan.lines[0].amount == expected
    assert plan.lines[0].amount.as_tuple().exponent == expected.as_tuple().exponent


def test_unit_price_times_quantity_rounds_back_to_the_line_amount_or_the_line_goes_as_quantity_one():
    assert price_line(D("10.00"), D("3"), "USD") == (D("3"), D("3.333333"), "")
    # No six-decimal unit price gives 1.00 back for three million units: one line at the amount instead.
    assert price_line(D("1.00"), D("3000000"), "USD") == (D("1"), D("1.00"), " (3000000 x)")
    assert price_line(D("10.00"), D("4"), "USD") == (D("4"), D("2.50"), "")
    # A fractional quantity keeps its quantity when a six-decimal unit price rounds back to the amount.
    assert price_line(D("1.00"), D("1.5"), "USD") == (D("1.5"), D("0.666667"), "")


def test_segment_values_text_round_trips():
    text = "company=01; account=4110; channel=20"
    values = parse_segment_values(text)
    assert values == {"company": "01", "account": "4110", "channel": "20"}
    assert format_segment_values(values, LAYOUT.segment_names) == "company=01; account=4110; channel=20"
    with pytest.raises(ValueError, match="name=value"):
        parse_segment_values("account 4110")
    with pytest.raises(ValueError, match="twice"):
        parse_segment_values("a=1; a=2")


# ---------------------------------------------------------------------------------------------------------------
# Tax-inclusive discounts (discount tax compensation) and payments taken inside Commerce
# ---------------------------------------------------------------------------------------------------------------


def tax_inclusive_order(**kw) -> SalesDocument:
    """UK prices include 20% VAT and the 10% coupon applies to them: Commerce takes the discount with its tax and
    gives the tax back as discount tax compensation (row_total - discount + tax + compensation per line)."""
    values = {
        "currency": "GBP",
        "shipping_amount": D("5.00"),
        "shipping_discount": D("0.60"),
        "shipping_tax": D("0.90"),
        "shipping_discount_tax_compensation": D("0.10"),
        "discount_tax_compensation": D("2.45"),
        "grand_total": "137.70",
    }
    values.update(kw)
    return order(
        line(sku="MH01", qty="2", price="50.00", discount="12.00", tax="18.00", discount_tax_compensation=D("2.00")),
        line(sku="UG04", qty="3", price="7.50", discount="2.70", tax="4.05", discount_tax_compensation=D("0.45")),
        **values,
    )


def test_tax_inclusive_discount_books_each_line_net_of_the_discount_without_its_tax():
    plan = resolve(tax_inclusive_order(), ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    # The shipping, 5.00 - 0.60 + 0.10 = 4.50, allocated by line amount; its tax 0.90 on the last line.
    assert [(ln.kind, ln.amount, ln.freight_amount, ln.tax_amount) for ln in plan.lines] == [
        ("item", D("90.00"), D("3.67"), D("18.00")),  # 100.00 - 12.00 + 2.00
        ("item", D("20.25"), D("0.83"), D("4.95")),  # 22.50 - 2.70 + 0.45; tax 4.05 + 0.90
    ]
    assert plan.total == plan.commerce_total == D("137.70")


def test_tax_inclusive_discount_lines_in_separate_mode_are_the_discount_less_its_tax():
    plan = resolve(tax_inclusive_order(), ruleset(), dataclasses.replace(DEFAULTS, discount_mode="separate"))
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.amount) for ln in plan.lines] == [
        ("item", D("100.00")),
        ("discount", D("-10.00")),
        ("item", D("22.50")),
        ("discount", D("-2.25")),
        ("discount", D("-0.50")),
    ]
    assert plan.lines[4].description == "Shipping discount" and plan.freight_total == D("5.00")
    assert plan.lines[1].reason == "discount on line 1 (12.00 less 2.00 discount tax compensation)"
    assert plan.total == plan.commerce_total == D("137.70")


@pytest.mark.parametrize(("kind", "header"), [("order", "2.45"), ("invoice", "2.55"), ("creditmemo", "2.55")])
def test_compensation_only_on_the_header_becomes_one_line(kind, header):
    # Orders count the items' compensation on the header; invoices and credit memos add the shipping's.
    doc = tax_inclusive_order(kind=kind, discount_tax_compensation=D(header))
    doc = dataclasses.replace(
        doc, lines=tuple(dataclasses.replace(ln, discount_tax_compensation=D(0)) for ln in doc.lines)
    )
    plan = resolve(doc, ruleset(), dataclasses.replace(DEFAULTS, journal_mode="sales_journal"))
    assert plan.ok, plan.problems
    extra = [ln for ln in plan.lines if ln.description == "Discount tax compensation"]
    assert [(ln.kind, ln.amount) for ln in extra] == [("discount", D("2.45"))]
    assert plan.total == plan.commerce_total == D("137.70")
    assert plan.journal_balanced


def test_the_header_compensation_is_not_counted_twice_when_the_lines_carry_it():
    plan = resolve(tax_inclusive_order(kind="invoice", discount_tax_compensation=D("2.55")), ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    assert [ln.kind for ln in plan.lines] == ["item", "item"]


def gift_card_order(**kw) -> SalesDocument:
    values = {
        "gift_cards_amount": D("25.00"),
        "customer_balance_amount": D("10.00"),
        "reward_currency_amount": D("2.70"),
        "grand_total": "100.00",
    }
    values.update(kw)
    return tax_inclusive_order(**values)


def test_gift_cards_store_credit_and_reward_points_are_prepayment_lines_and_the_sale_keeps_its_price():
    defaults = dataclasses.replace(DEFAULTS, journal_mode="sales_journal")
    plan = resolve(gift_card_order(), ruleset(), defaults)
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.description, ln.amount, ln.tax_amount) for ln in plan.lines[2:]] == [
        ("prepayment", "Gift card", D("-25.00"), D("0")),
        ("prepayment", "Store credit", D("-10.00"), D("0")),
        ("prepayment", "Reward points", D("-2.70"), D("0")),
    ]
    assert plan.lines[2].reason == "25.00 GBP paid by gift card in Commerce, not part of its grand total"
    # Revenue and tax are the full sale; the receivable is what the customer still owes.
    assert sum(ln.amount + ln.freight_amount for ln in plan.lines if ln.kind == "item") == D("114.75")
    assert plan.tax_total == D("22.95")
    assert plan.total == plan.commerce_total == D("100.00")
    receivable = [d for d in plan.distributions if d.account_class == "Receivable"]
    assert [(d.combination, d.amount) for d in receivable] == [("01-000-1210-0000-00", D("100.00"))]
    prepaid = [d for d in plan.distributions if d.line_number in (3, 4, 5)]
    assert {(d.account_class, d.combination) for d in prepaid} == {("Revenue", "01-000-2410-0000-00")}
    assert "template prepayment" in prepaid[0].reason
    # The journal debits the prepayment (gift card liability) account.
    journal = [(j.combination, j.entered_dr, j.entered_cr) for j in plan.journal_lines]
    assert ("01-000-2410-0000-00", D("25.00"), None) in journal
    assert plan.journal_balanced and plan.journal_debits == D("137.70")


def test_a_missing_prepayment_template_parks_the_gift_card_order_with_the_fix():
    templates = [t for t in TEMPLATES if t.account_class != "prepayment"]
    plan = resolve(gift_card_order(), ruleset(templates=templates), DEFAULTS)
    assert [p.code for p in plan.problems] == ["template_missing"]
    assert plan.problems[0].message == "No prepayment account template is effective on 2026-03-14."
    assert "gift card, store credit and reward points liability or clearing account" in plan.problem_hint()
    # An order paid without them needs no prepayment template.
    assert resolve(tax_inclusive_order(), ruleset(templates=templates), DEFAULTS).ok


def test_store_credit_given_back_on_a_credit_memo_is_a_prepayment_line():
    doc = gift_card_order(kind="creditmemo", gift_cards_amount=D(0), reward_currency_amount=D(0), grand_total="127.70")
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.amount, ln.reason) for ln in plan.lines if ln.kind == "prepayment"] == [
        ("prepayment", D("-10.00"), "10.00 GBP refunded to the store credit in Commerce, not part of its grand total")
    ]
    assert plan.total == D("127.70")


@pytest.mark.parametrize("discount_mode", ["net", "separate"])
def test_a_real_tax_inclusive_gift_card_order_and_its_invoice_total_to_the_cent(discount_mode):
    from commerce.payloads import invoice_document, order_document

    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"
    entity = json.loads((fixtures / "order_gift_card_tax_inclusive.json").read_text())["data"]["order"]
    invoice = json.loads((fixtures / "invoice_gift_card_rest.json").read_text())
    defaults = dataclasses.replace(DEFAULTS, discount_mode=discount_mode, journal_mode="sales_journal")
    for document in (order_document(entity), invoice_document(invoice)):
        plan = resolve(document, ruleset(), defaults)
        assert plan.ok, plan.problems
        assert plan.total == document.grand_total == D("100.00")
        assert not [ln for ln in plan.lines if ln.kind == "rounding"]
        assert plan.journal_balanced


# ---------------------------------------------------------------------------------------------------------------
# Rules that cannot be tried: the document lacks what they match on
# ---------------------------------------------------------------------------------------------------------------


def test_a_website_rule_with_no_website_on_the_document_is_a_problem_not_the_default():
    stores = [StoreRuleData("website", "2", business_unit="Vision Europe"), StoreRuleData("default", "")]
    plan = resolve(order(store_id="3"), ruleset(stores=stores), DEFAULTS)
    [problem] = plan.problems
    assert problem.code == "store_data_missing"
    assert problem.message == (
        "The document (store 3) has no website id, so the store rules by website could not be tried "
        "(it would have used store rule default)."
    )
    assert plan.problem_hint().startswith("Resolution: ") and "store rule by store id" in plan.problem_hint()
    assert resolve(order(store_id="3", website_id="2"), ruleset(stores=stores), DEFAULTS).header.business_unit == (
        "Vision Europe"
    )


def test_a_store_rule_that_matches_above_the_missing_data_needs_nothing_more():
    stores = [StoreRuleData("store", "3", business_unit="Vision Europe"), StoreRuleData("website", "2")]
    plan = resolve(order(store_id="3"), ruleset(stores=stores), DEFAULTS)
    assert plan.ok, plan.problems
    assert plan.header.business_unit == "Vision Europe"


def test_a_known_website_without_a_rule_falls_back_to_the_default_quietly():
    stores = [StoreRuleData("website", "2", business_unit="Vision Europe")]
    plan = resolve(order(store_id="1", website_id="1"), ruleset(stores=stores), DEFAULTS)
    assert plan.ok, plan.problems
    assert plan.header.store_reason == "connection defaults"


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ({}, "attribute set or category"),
        ({"attribute_set_id": "5"}, "category"),
        ({"category_ids": ("7",)}, "attribute set"),
    ],
)
def test_product_rules_that_cannot_be_tried_are_a_problem_per_line(extra, missing):
    products = (
        ProductRuleData("attribute_set", "4", segments={"account": "4104"}),
        ProductRuleData("category", "7", segments={"account": "4105"}),
        DEFAULT_PRODUCT,
    )
    plan = resolve(order(line(sku="MOUSE", **extra)), ruleset(products=products), DEFAULTS)
    [problem] = plan.problems
    assert problem.code == "product_data_missing" and problem.line_number == 1
    assert problem.message.startswith(f"Line 1: SKU MOUSE has no {missing} in the document")
    assert "GET /V1/products/MOUSE" in problem.resolution


def test_a_sku_rule_needs_no_category_or_attribute_set():
    products = (ProductRuleData("sku", "MOUSE", item_number="IT-MOUSE"), ProductRuleData("category", "7"))
    plan = resolve(order(line(sku="MOUSE")), ruleset(products=products), DEFAULTS)
    assert plan.ok, plan.problems
    assert plan.lines[0].item_number == "IT-MOUSE"


def test_a_rule_not_yet_effective_asks_for_no_data():
    products = (ProductRuleData("category", "7", effective_from=date(2027, 1, 1)), DEFAULT_PRODUCT)
    plan = resolve(order(line(sku="MOUSE")), ruleset(products=products), DEFAULTS)
    assert plan.ok, plan.problems
