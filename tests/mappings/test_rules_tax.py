"""Tax, freight and currency in the resolver, without a database: which tax rule a Commerce tax takes, the manual
tax lines and classification codes of both tax modes, the shipping's freight and tax, and the problems."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from commerce.payloads import creditmemo_document, invoice_document, order_document
from connector.documents import AppliedTax
from mappings.rules import TaxRuleData, inherit_tax_facts, match_tax, resolve
from tests.mappings.test_rules import DEFAULTS, line, order, ruleset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commerce"
STATE = TaxRuleData(
    "tax_code",
    "US-TX-*-Rate State",
    tax_regime_code="US SALES AND USE TAX",
    tax="TX STATE SALES TAX",
    tax_status_code="STANDARD",
    tax_rate_code="TX_STATE",
    tax_classification_code="US_STD",
)
CITY = TaxRuleData(
    "tax_code",
    "Austin City",  # by its title
    tax_regime_code="US SALES AND USE TAX",
    tax_rate_code="AUSTIN_CITY",
    tax_jurisdiction_code="AUSTIN",
)
EXEMPT = TaxRuleData("rate", "0", country="US", tax_classification_code="US_EXEMPT")
US_RULES = (STATE, CITY, EXEMPT)


def rest_order():
    return order_document(json.loads((FIXTURES / "order_rest_applied_taxes.json").read_text()))


# --- precedence -------------------------------------------------------------------------------------------------

RULES = (
    TaxRuleData("tax_code", "US-CA-*-Rate 1", tax_regime_code="R", tax_rate_code="BY-CODE"),
    TaxRuleData("tax_code", "GB VAT", tax_regime_code="R", tax_rate_code="BY-TITLE"),
    TaxRuleData("rate", "20", country="GB", tax_regime_code="R", tax_rate_code="RATE-GB"),
    TaxRuleData("rate", "20.00", tax_regime_code="R", tax_rate_code="RATE-ANY"),
    TaxRuleData("default", "", tax_regime_code="R", tax_rate_code="DEFAULT"),
)


@pytest.mark.parametrize(
    ("tax", "country", "expected", "label"),
    [
        (AppliedTax("US-CA-*-Rate 1", "CA", D("20")), "GB", "BY-CODE", "tax rule code=US-CA-*-Rate 1"),
        (AppliedTax("GB-VAT-STD", "gb vat", D("20")), "GB", "BY-TITLE", "tax rule code=GB VAT"),
        (AppliedTax("", "", D("20.0000")), "GB", "RATE-GB", "tax rule rate=20 (GB)"),
        (AppliedTax("", "", D("20")), "FR", "RATE-ANY", "tax rule rate=20.00"),
        (AppliedTax("X", "Y", D("7")), "FR", "DEFAULT", "tax rule default"),
    ],
)
def test_a_tax_takes_its_code_or_title_then_its_rate_and_country_then_the_default(tax, country, expected, label):
    matched = match_tax(tax, country, RULES, DEFAULTS_DAY)
    assert matched is not None
    assert (matched.rule.tax_rate_code, matched.label) == (expected, label)


DEFAULTS_DAY = order().created_at.date()


def test_an_untaxed_line_never_takes_the_default_and_an_unknown_rate_never_takes_a_zero_rate_rule():
    assert match_tax(AppliedTax(), "US", RULES, DEFAULTS_DAY, allow_default=False) is None
    zero = (TaxRuleData("rate", "0", tax_classification_code="EXEMPT"),)
    taxed_without_rate = AppliedTax(amount=D("5"))
    assert match_tax(taxed_without_rate, "US", zero, DEFAULTS_DAY, rate_known=False) is None


# --- manual tax lines -------------------------------------------------------------------------------------------


def test_an_order_with_several_rates_gets_manual_tax_lines_with_the_mapped_codes():
    plan = resolve(rest_order(), ruleset(taxes=US_RULES), DEFAULTS)
    assert plan.ok, plan.problems
    laptop, book, snack = plan.lines
    # The laptop's 8.25 % is Texas' 6.25 % and Austin's 2 %, each its own tax line.
    assert [(t.tax_regime_code, t.tax_rate_code, t.amount) for t in laptop.tax_lines] == [
        ("US SALES AND USE TAX", "TX_STATE", D("62.50")),
        ("US SALES AND USE TAX", "AUSTIN_CITY", D("20.00")),
    ]
    assert laptop.tax_lines[0].tax == "TX STATE SALES TAX" and laptop.tax_lines[0].tax_status_code == "STANDARD"
    assert laptop.tax_lines[1].tax_jurisdiction_code == "AUSTIN"
    assert laptop.tax_classification_code == "US_STD"
    # The exempt book takes the 0 % rule for the US: its classification code, and no tax line.
    assert (book.tax_lines, book.tax_classification_code) == ((), "US_EXEMPT")
    # The shipping tax (Texas only) rides on the last line, marked as the shipping's.
    assert [(t.tax_rate_code, t.amount, t.source) for t in snack.tax_lines] == [
        ("AUSTIN_CITY", D("0.60"), "item"),
        ("TX_STATE", D("0.63"), "shipping"),
    ]
    assert sum(t.amount for ln in plan.lines for t in ln.tax_lines) == plan.tax_total == D("83.73")
    assert plan.total == plan.commerce_total == D("1163.73")
    assert "tax rule code=US-TX-*-Rate State" in laptop.tax_reason


def test_a_partial_invoice_takes_its_orders_breakdown_scaled_to_what_it_invoices():
    order_doc = rest_order()
    invoice = dataclasses.replace(
        order_doc,
        kind="invoice",
        entity_id="300",
        lines=(dataclasses.replace(order_doc.lines[0], taxes=(), tax_percent=D(0), tax=D("41.25"), row_total=D(500)),),
        shipping_amount=D(0),
        shipping_tax=D(0),
        applied_taxes=(),
        shipping_taxes=(),
        tax_country="",
        grand_total=D("541.25"),
    )
    plan = resolve(inherit_tax_facts(invoice, order_doc), ruleset(taxes=US_RULES), DEFAULTS)
    assert plan.ok, plan.problems
    assert [(t.tax_rate_code, t.amount) for t in plan.lines[0].tax_lines] == [
        ("TX_STATE", D("31.25")),
        ("AUSTIN_CITY", D("10.00")),
    ]


def test_a_tax_inclusive_order_sends_the_tax_commerce_charged_per_line():
    entity = json.loads((FIXTURES / "order_gift_card_tax_inclusive.json").read_text())["data"]["order"]
    document = order_document(entity)
    vat = TaxRuleData("rate", "20", country="GB", tax_regime_code="FUS_STCC_REGIME-UES", tax_rate_code="VAT20")
    plan = resolve(document, ruleset(taxes=(vat,)), DEFAULTS)
    assert plan.ok, plan.problems
    assert document.tax_country == "GB"
    assert [[t.amount for t in ln.tax_lines] for ln in plan.lines if ln.kind == "item"] == [
        [D("18.00")],
        [D("4.05"), D("0.90")],  # the shipping's VAT on the last item line
    ]
    assert plan.total == plan.commerce_total == D("100.00")


def test_a_tax_no_rule_matches_parks_with_the_reason_and_the_fix():
    plan = resolve(rest_order(), ruleset(taxes=(STATE,)), DEFAULTS)
    codes = [p.code for p in plan.problems]
    assert codes == ["tax_mapping_missing", "tax_mapping_missing"]  # lines 1 and 3 have the Austin tax
    problem = plan.problems[0]
    assert problem.message == (
        'Line 1: no tax rule matches the Commerce tax code US-TX-Austin-City ("Austin City") at 2 % in US and there '
        "is no default tax rule."
    )
    assert "Add a tax rule for tax code US-TX-Austin-City" in problem.resolution
    assert "Mappings > Tax rules" in plan.problem_hint()


def test_the_shipping_tax_needs_a_rule_too():
    doc = order(line(tax="0"), shipping_amount=D("10.00"), shipping_tax=D("2.00"))
    plan = resolve(doc, ruleset(taxes=()), DEFAULTS)
    assert [p.message.split(":")[0] for p in plan.problems] == ["The shipping"]


def test_a_rule_without_regime_and_rate_codes_cannot_make_a_manual_tax_line():
    only_classification = TaxRuleData("default", "", tax_classification_code="US_STD")
    plan = resolve(order(line(tax="8.25")), ruleset(taxes=(only_classification,)), DEFAULTS)
    assert [p.code for p in plan.problems] == ["tax_rule_incomplete"]
    assert "tax regime code or tax rate code" in plan.problems[0].message


# --- the fusion tax mode ------------------------------------------------------------------------------------------


def test_fusion_tax_mode_sends_only_classification_codes_and_keeps_commerces_tax_to_compare():
    fusion = dataclasses.replace(DEFAULTS, tax_mode="fusion")
    city = dataclasses.replace(CITY, tax_classification_code="US_CITY")
    plan = resolve(rest_order(), ruleset(taxes=(STATE, city, EXEMPT)), fusion)
    assert plan.ok, plan.problems
    assert plan.tax_mode == "fusion"
    assert all(ln.tax_lines == () for ln in plan.lines)
    # A line's first tax with a classification code decides it (the laptop's state tax).
    assert [ln.tax_classification_code for ln in plan.lines] == ["US_STD", "US_EXEMPT", "US_CITY"]
    assert plan.tax_total == D("83.73") and plan.total == plan.commerce_total


def test_fusion_tax_mode_needs_a_classification_code_on_the_rule():
    fusion = dataclasses.replace(DEFAULTS, tax_mode="fusion")
    codes_only = TaxRuleData("default", "", tax_regime_code="US SALES AND USE TAX", tax_rate_code="STD")
    plan = resolve(order(line(tax="8.25")), ruleset(taxes=(codes_only,)), fusion)
    assert [p.code for p in plan.problems] == ["tax_rule_incomplete"]
    assert "tax classification code" in plan.problems[0].message


# --- freight ------------------------------------------------------------------------------------------------------


def test_a_credit_memo_carries_its_freight_at_the_header_in_either_mode():
    memo = order(line(tax="5.00"), kind="creditmemo", shipping_amount=D("7.00"), shipping_tax=D("0.70"))
    for mode in ("allocated", "header"):
        plan = resolve(memo, ruleset(), dataclasses.replace(DEFAULTS, freight_mode=mode))
        assert plan.ok, plan.problems
        assert (plan.freight_mode, plan.header_freight) == ("header", D("7.00"))
        assert plan.lines[0].tax_amount == D("5.70")
        assert plan.total == memo.grand_total


def test_a_credit_memo_refunding_only_the_shipping_credits_it_as_a_line():
    refund = dataclasses.replace(line(qty="0", price="10.00", row_total=D(0)))
    memo = order(refund, kind="creditmemo", shipping_amount=D("7.00"), shipping_tax=D("0.70"))
    plan = resolve(memo, ruleset(), DEFAULTS)
    assert plan.ok, plan.problems
    assert [(ln.kind, ln.amount, ln.tax_amount) for ln in plan.lines] == [("freight", D("7.00"), D("0.70"))]
    assert plan.header_freight == 0 and plan.total == memo.grand_total


def test_an_invoice_without_an_item_line_to_carry_its_shipping_is_a_problem():
    doc = order(line(qty="0", price="10.00", row_total=D(0)), shipping_amount=D("7.00"))
    plan = resolve(doc, ruleset(), DEFAULTS)
    assert [p.code for p in plan.problems] == ["freight_unplaced"]


def test_invoices_and_credit_memos_inherit_the_orders_tax_facts():
    order_doc = rest_order()
    entity = {
        "entity_id": "5",
        "increment_id": "000000005",
        "order_id": "71",
        "created_at": "2026-11-26 10:00:00",
        "order_currency_code": "USD",
        "grand_total": "1082.50",
        "items": [{"order_item_id": "21", "sku": "SKU-LAPTOP-15", "qty": "1", "price": "1000", "tax_amount": "82.5"}],
    }
    for document in (invoice_document(entity), creditmemo_document(entity)):
        assert document.lines[0].taxes == () and document.tax_country == ""
        inherited = inherit_tax_facts(document, order_doc)
        assert inherited.tax_country == "US"
        assert [t.code for t in inherited.lines[0].taxes] == ["US-TX-*-Rate State", "US-TX-Austin-City"]
        assert inherited.lines[0].tax_percent == D("8.25")
        plan = resolve(inherited, ruleset(taxes=US_RULES), DEFAULTS)
        assert plan.ok, plan.problems
        assert [t.tax_rate_code for t in plan.lines[0].tax_lines] == ["TX_STATE", "AUSTIN_CITY"]
