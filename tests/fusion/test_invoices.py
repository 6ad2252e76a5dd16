"""The AR invoice and credit memo bodies built from a posting plan (pure: no database, no HTTP)."""

from dataclasses import replace
from decimal import Decimal

from fusion.invoices import credit_memo_payload, invoice_payload, payload_total
from mappings import rules
from tests.posting import TEMPLATES, order_document

RULES = rules.RuleSet(
    customers=(rules.CustomerRuleData("default", "", "1008", "1042"),),
    products=(rules.ProductRuleData("default", ""),),
    stores=(rules.StoreRuleData("default", "", currency_mode="convert", conversion_rate_type="Corporate"),),
    templates=tuple(rules.AccountTemplateData(k, combination=v) for k, v in TEMPLATES.items()),
    layouts=(rules.SegmentLayoutData(("Company", "Department", "Account", "SubAccount", "Product")),),
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
    lines = body["receivablesInvoiceLines"]
    assert [line["LineNumber"] for line in lines] == [1, 2]
    assert sum(Decimal(str(line["Quantity"])) * Decimal(str(line["UnitSellingPrice"])) for line in lines) == Decimal(
        "2609.98"
    )
    receivable = [d for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Receivable"]
    assert receivable == [
        {"AccountClass": "Receivable", "AccountCombination": "01-000-1210-0000-000", "Amount": 2609.98}
    ]


def test_autoaccounting_sends_no_distributions_and_incomplete_is_the_default():
    body = invoice_payload(_plan(distributions="auto"), complete=False)
    assert "receivablesInvoiceDistributions" not in body and "InvoiceStatus" not in body


def test_a_foreign_currency_invoice_names_its_conversion():
    body = invoice_payload(_plan(order_document(currency="EUR")), complete=False)
    assert body["InvoiceCurrencyCode"] == "EUR"
    assert body["ConversionRateType"] == "Corporate" and body["ConversionDate"] == "2026-11-20"
    assert "ConversionRate" not in body  # Fusion looks the Corporate rate up itself


def test_credit_memo_body_is_negative_and_names_the_credited_invoice():
    memo = order_document("77", kind="creditmemo", order_entity_id="12345", shipping="0")
    plan = rules.resolve(memo, RULES, DEFAULTS, original_invoice_number="MAG-000012345")
    body = credit_memo_payload(plan)
    assert body["CrossReference"] == "MAG-000012345"
    assert "MAG-000012345" in body["CreditMemoComments"]
    assert body["CreditMemoCurrency"] == "USD"
    assert all(line["UnitSellingPrice"] < 0 for line in body["receivablesCreditMemoLines"])


def test_a_credit_memo_credits_the_refunded_tax_too():
    memo = replace(order_document("78", kind="creditmemo", order_entity_id="12345", shipping="0"))
    line = replace(memo.lines[0], tax=Decimal("208.00"))
    memo = replace(memo, lines=(line,), grand_total=memo.grand_total + Decimal("208.00"))
    plan = rules.resolve(memo, RULES, DEFAULTS, original_invoice_number="MAG-000012345")
    body = credit_memo_payload(plan)
    assert body["receivablesCreditMemoLines"][-1]["LineDescription"] == "Tax refunded"
    assert payload_total(body) == plan.total == memo.grand_total


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
