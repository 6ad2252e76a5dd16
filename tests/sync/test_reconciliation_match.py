"""The comparison itself, over plain data: matching by the number the connection gives each document, aliases
for numbers Fusion gave, duplicates, amounts at the currency's precision, and the memory a month costs."""

from __future__ import annotations

import tracemalloc
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from connector.models import Connection
from sync.flows.reconciliation import reconcile
from sync.flows.reconciliation_match import (
    AMOUNT_DIFFERS,
    DUPLICATE_IN_FUSION,
    MISSING_IN_COMMERCE,
    MISSING_IN_FUSION,
    CommerceDoc,
    FusionDoc,
    Reconciler,
)
from sync.flows.reconciliation_sources import commerce_doc, fusion_doc

DAY = date(2026, 11, 3)


def _run(commerce, fusion, aliases=None):
    reconciler = Reconciler(prefix="MAG-", aliases=aliases or {})
    for doc in commerce:
        reconciler.add_commerce(doc)
    for doc in fusion:
        reconciler.add_fusion(doc)
    return reconciler, reconciler.finish()


def test_a_number_fusion_gave_is_matched_through_its_alias():
    reconciler, differences = _run(
        [CommerceDoc("order", "000000001", DAY, "USD", Decimal("10.00"))],
        [FusionDoc("receivablesInvoices", "40012", DAY, "USD", Decimal("10.00"))],
        aliases={"40012": "MAG-000000001"},
    )
    assert differences == [] and reconciler.matched_count == 1


def test_an_alias_and_the_expected_number_both_in_fusion_are_a_duplicate():
    _, differences = _run(
        [CommerceDoc("order", "000000001", DAY, "USD", Decimal("10.00"))],
        [
            FusionDoc("receivablesInvoices", "OLD-1", DAY, "USD", Decimal("10.00")),
            FusionDoc("receivablesInvoices", "MAG-000000001", DAY, "USD", Decimal("10.00")),
        ],
        aliases={"OLD-1": "MAG-000000001"},
    )
    assert [(d.kind, d.commerce_number, d.fusion_numbers) for d in differences] == [
        (DUPLICATE_IN_FUSION, "000000001", ("OLD-1", "MAG-000000001"))
    ]


def test_an_order_and_a_credit_memo_with_one_increment_id_are_two_documents():
    _, differences = _run(
        [
            CommerceDoc("order", "000000012", DAY, "USD", Decimal("10.00")),
            CommerceDoc("creditmemo", "000000012", DAY, "USD", Decimal("-4.00")),
        ],
        [FusionDoc("receivablesInvoices", "MAG-000000012", DAY, "USD", Decimal("10.00"))],
    )
    assert [(d.kind, d.commerce_kind, d.commerce_number, d.commerce_amount) for d in differences] == [
        (MISSING_IN_FUSION, "creditmemo", "000000012", Decimal("-4.00"))
    ]


def test_amounts_compare_at_the_currencys_precision():
    _, differences = _run(
        [
            CommerceDoc("order", "1", DAY, "USD", Decimal("10.0000")),
            CommerceDoc("order", "2", DAY, "JPY", Decimal("1500.0000")),
            CommerceDoc("order", "3", DAY, "USD", Decimal("10.00")),
        ],
        [
            FusionDoc("receivablesInvoices", "MAG-1", DAY, "USD", Decimal("10")),
            FusionDoc("receivablesInvoices", "MAG-2", DAY, "JPY", Decimal("1501")),
            FusionDoc("receivablesInvoices", "MAG-3", DAY, "EUR", Decimal("10.00")),
        ],
    )
    assert [(d.kind, d.commerce_number, d.difference) for d in differences] == [
        (AMOUNT_DIFFERS, "2", Decimal("1")),
        (AMOUNT_DIFFERS, "3", None),  # another currency: no difference to compute
    ]


def test_a_fusion_document_of_no_commerce_document_is_missing_in_commerce():
    _, differences = _run([], [FusionDoc("receivablesCreditMemos", "MAG-CM-9", DAY, "USD", Decimal("-1.00"))])
    assert [(d.kind, d.fusion_numbers, d.fusion_amount) for d in differences] == [
        (MISSING_IN_COMMERCE, ("MAG-CM-9",), Decimal("-1.00"))
    ]


# --- memory ---------------------------------------------------------------------------------------------------

MONTH = 50_000
ZONE = ZoneInfo("UTC")


def _commerce_item(n: int) -> dict:
    """A Commerce order search item of the usual size: header, three lines, addresses."""
    line = {
        "sku": f"SKU-{n % 97}",
        "name": "Blue cotton shirt, size M",
        "qty_ordered": 1,
        "price": "19.99",
        "row_total": "19.99",
        "tax_amount": "1.60",
        "discount_amount": "0.00",
        "product_type": "simple",
        "item_id": n * 3,
        "order_id": n,
    }
    address = {
        "firstname": "Jane",
        "lastname": "Doe",
        "street": ["1 Main St"],
        "city": "Springfield",
        "postcode": "01101",
    }
    return {
        "entity_id": n,
        "increment_id": f"{n:09d}",
        "created_at": f"2026-11-{1 + n % 28:02d} {n % 24:02d}:00:00",
        "grand_total": "63.57",
        "order_currency_code": "USD",
        "customer_email": f"customer{n}@example.com",
        "items": [dict(line), dict(line), dict(line)],
        "billing_address": dict(address),
        "extension_attributes": {"shipping_assignments": [{"shipping": {"address": dict(address)}}]},
    }


def _fusion_row(n: int) -> dict:
    return {
        "CustomerTransactionId": 300100000000000 + n,
        "TransactionNumber": f"MAG-{n:09d}",
        "TransactionDate": f"2026-11-{1 + n % 28:02d}",
        "InvoiceCurrencyCode": "USD",
        "EnteredAmount": 63.57 if n % 1000 else 63.56,
    }


def test_a_month_of_fifty_thousand_documents_is_not_held_in_memory():
    tracemalloc.start()
    try:
        held = [_commerce_item(n) for n in range(1, 1001)] + [_fusion_row(n) for n in range(1, 1001)]
        per_thousand, _ = tracemalloc.get_traced_memory()
        del held
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        reconciler = reconcile(
            connection=Connection(transaction_number_prefix="MAG-"),
            date_from=date(2026, 11, 1),
            date_to=date(2026, 11, 30),
            commerce=(commerce_doc("order", _commerce_item(n), ZONE) for n in range(1, MONTH + 1)),
            fusion=(fusion_doc("receivablesInvoices", _fusion_row(n)) for n in range(1, MONTH + 1)),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    holding_both_sides = per_thousand * MONTH // 1000
    assert reconciler.matched_count == MONTH and len(reconciler.differences) == MONTH // 1000
    assert peak - before < holding_both_sides / 8, (peak - before, holding_both_sides)
