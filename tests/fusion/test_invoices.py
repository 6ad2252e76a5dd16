"""The AR invoice and credit memo bodies built from a posting plan (pure: no database, no HTTP): tax as manual tax
lines or classification codes, freight allocated or at the header, foreign currency with its conversion."""

from dataclasses import replace
from decimal import Decimal

import pytest

from fusion.invoices import billed_total, credit_memo_payload, invoice_payload, payload_total
from mappings import rules
from tests.posting import TAX_RULE, TEMPLATES, order_document

RULES = rules.RuleSet(
    customers=(rules.CustomerRuleData("default", "", "1008", "1042"),),
    products=(rules.ProductRuleData("default", ""),),
    stores=(rules.StoreRuleData("default", "", currency_mode="convert", conversion_rate_type="Corporate"),),
    templates=tuple(rules.AccountTemplateData(k, combination=v) for k, v in TEMPLATES.items()),
    layouts=(rules.SegmentLayoutData(("Company", "Department", "Account", "SubAccount", "Product")),),
    taxes=(
        rules.TaxRuleData(
            "default",
            "",
            tax_regime_code=TAX_RULE["tax_regime_code"],
            tax_rate_code=TAX_RULE["tax_rate_code"],
            tax_classification_code=TAX_RULE["tax_classification_code"],
        ),
    ),
)
DEFAULTS = rules.ConnectionDefaults(
    business_unit="Vision Operations",
    transaction_source="COMMERCE_WEB",
    ledger_currency="USD",
    transaction_number_prefix="MAG-",
    time_zone="America/Los_Angeles",
)


def _plan(document=None, **defaults):
    return rules.resolve(document or order_document(), RULES, replace(DEFAULTS, **defaults))


def test_invoice_body_carries_header_lines_and_manual_distributions():
    body = invoice_payload(_plan(), complete=True)
    assert body["TransactionNumber"] == "MAG-000012345"
    assert body["TransactionDate"] == body["AccountingDate"] == "2026-11-20"  # 15:30 UTC is morning in LA
    assert body["InvoiceStatus"] == "Complete"
    assert "ConversionRateType" not in body  # USD order, USD ledger
    (line,) = body["receivablesInvoiceLines"]
    assert Decimal(str(line["Quantity"])) * Decimal(str(line["UnitSellingPrice"])) == Decimal("2599.98")
    assert line["AllocatedFreightAmount"] == 10  # the shipping, on the only line
    receivable = [d for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Receivable"]
    assert receivable == [
        {"AccountClass": "Receivable", "AccountCombination": "01-000-1210-0000-000", "Amount": 2609.98}
    ]
    freight = [d for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Freight"]
    assert freight == [
        {"AccountClass": "Freight", "AccountCombination": "01-000-4520-0000-000", "Amount": 10, "InvoiceLineNumber": 1}
    ]


def test_autoaccounting_sends_no_distributions_and_incomplete_is_the_default():
    body = invoice_payload(_plan(distributions="auto"), complete=False)
    assert "receivablesInvoiceDistributions" not in body and "InvoiceStatus" not in body


@pytest.mark.parametrize(
    ("rate_type", "expected_rate"),
    [("Corporate", None), ("Spot", None), ("User", 1.25)],
)
def test_a_eur_invoice_into_a_usd_ledger_names_its_conversion(rate_type, expected_rate):
    document = replace(order_document(currency="EUR"), base_currency="USD", base_to_order_rate=Decimal("0.8"))
    defaults = replace(DEFAULTS, conversion_rate_type=rate_type)
    rules_without_store = replace(RULES, stores=())
    body = invoice_payload(rules.resolve(document, rules_without_store, defaults), complete=False)
    assert body["InvoiceCurrencyCode"] == "EUR"
    assert body["ConversionRateType"] == rate_type and body["ConversionDate"] == "2026-11-20"
    assert body.get("ConversionRate") == expected_rate  # only User sends the rate: EUR -> USD is 1 / 0.8


def test_credit_memo_body_is_negative_and_names_the_credited_invoice():
    memo = order_document("77", kind="creditmemo", order_entity_id="12345", shipping="0")
    plan = rules.resolve(memo, RULES, DEFAULTS, original_invoice_number="MAG-000012345")
    body = credit_memo_payload(plan)
    assert body["CrossReference"] == "MAG-000012345"
    assert "MAG-000012345" in body["CreditMemoComments"]
    assert body["CreditMemoCurrency"] == "USD"
    assert all(line["UnitSellingPrice"] < 0 for line in body["receivablesCreditMemoLines"])


def test_a_credit_memo_credits_its_tax_as_negative_manual_tax_lines_and_its_freight_at_the_header():
    memo = replace(order_document("78", kind="creditmemo", order_entity_id="12345", shipping="7.00"))
    line = replace(memo.lines[0], tax=Decimal("208.00"), tax_percent=Decimal("8.25"))
    memo = replace(memo, lines=(line,), shipping_tax=Decimal("0.58"), grand_total=memo.grand_total + Decimal("208.58"))
    plan = rules.resolve(memo, RULES, DEFAULTS, original_invoice_number="MAG-000012345")
    body = credit_memo_payload(plan)
    (credit,) = body["receivablesCreditMemoLines"]
    assert credit["TaxClassificationCode"] == "US_STD"
    assert credit["receivablesCreditMemoLineTaxLines"] == [
        {"TaxRegimeCode": "US SALES AND USE TAX", "TaxRateCode": "STD", "TaxAmount": -208},
        {"TaxRegimeCode": "US SALES AND USE TAX", "TaxRateCode": "STD", "TaxAmount": -0.58},
    ]
    assert body["FreightCreditAmount"] == -7
    assert "Tax refunded" not in str(body)
    assert payload_total(body) == plan.total == memo.grand_total


def _taxed_order():
    document = order_document(lines=(("LAP-15", "1", "100.00"),), shipping="0")
    line = replace(document.lines[0], tax=Decimal("8.25"))
    return replace(document, lines=(line,), grand_total=Decimal("108.25"))


def test_manual_tax_lines_name_the_mapped_regime_rate_tax_status_and_jurisdiction():
    taxes = (
        rules.TaxRuleData(
            "default",
            "",
            tax_regime_code="US SALES AND USE TAX",
            tax="US SALES TAX",
            tax_status_code="STANDARD",
            tax_rate_code="STD",
            tax_jurisdiction_code="TX-AUSTIN",
            tax_classification_code="US_STD",
        ),
    )
    document = _taxed_order()
    body = invoice_payload(rules.resolve(document, replace(RULES, taxes=taxes), DEFAULTS), complete=False)
    (line,) = body["receivablesInvoiceLines"]
    assert line["TaxClassificationCode"] == "US_STD"
    assert line["receivablesInvoiceLineTaxLines"] == [
        {
            "TaxRegimeCode": "US SALES AND USE TAX",
            "TaxRateCode": "STD",
            "TaxAmount": 8.25,
            "Tax": "US SALES TAX",
            "TaxStatusCode": "STANDARD",
            "TaxJurisdictionCode": "TX-AUSTIN",
        }
    ]
    assert payload_total(body) == Decimal("108.25")


def test_header_freight_goes_as_freight_amount_with_a_freight_distribution_without_a_line():
    body = invoice_payload(_plan(freight_mode="header"), complete=False)
    assert body["FreightAmount"] == 10
    assert all("AllocatedFreightAmount" not in line for line in body["receivablesInvoiceLines"])
    freight = [d for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Freight"]
    assert freight == [{"AccountClass": "Freight", "AccountCombination": "01-000-4520-0000-000", "Amount": 10}]
    assert payload_total(body) == Decimal("2609.98")


def test_fusion_tax_mode_sends_classification_codes_but_no_tax_nor_the_receivable_it_would_change():
    document = _taxed_order()
    plan = rules.resolve(document, RULES, replace(DEFAULTS, tax_mode="fusion"))
    body = invoice_payload(plan, complete=False)
    (line,) = body["receivablesInvoiceLines"]
    assert line["TaxClassificationCode"] == "US_STD" and "receivablesInvoiceLineTaxLines" not in line
    assert {d["AccountClass"] for d in body["receivablesInvoiceDistributions"]} == {"Revenue"}
    assert payload_total(body) == billed_total(plan) == Decimal("100.00")


def test_an_invoice_body_bills_exactly_the_plan_total():
    plan = _plan()
    assert payload_total(invoice_payload(plan, complete=False)) == plan.total


def test_a_credit_memo_spreads_a_separate_discount_over_its_lines_and_never_sends_a_positive_line():
    memo = order_document(
        "79",
        kind="creditmemo",
        order_entity_id="12345",
        lines=(("LAP-15", "1", "100.00"), ("MOUSE", "3", "10.00")),
        shipping="0",
    )
    lines = tuple(replace(line, discount=Decimal("13.01")) if line.sku == "LAP-15" else line for line in memo.lines)
    memo = replace(memo, lines=lines, grand_total=Decimal("116.99"))
    plan = rules.resolve(memo, RULES, replace(DEFAULTS, discount_mode="separate"), original_invoice_number="MAG-1")
    assert any(line.amount < 0 for line in plan.lines)  # the discount is its own plan line
    body = credit_memo_payload(plan)
    assert all(line["UnitSellingPrice"] < 0 for line in body["receivablesCreditMemoLines"])
    assert payload_total(body) == plan.total == Decimal("116.99")
