"""Shared set-up for posting tests: a connection with a complete set of GL mappings matching the mock Fusion
chart of accounts (Company-Department-Account-SubAccount-Product), and sales documents."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from connector.documents import Customer, SalesDocument, SalesLine
from mappings.models import AccountTemplate, CustomerRule, ProductRule, SegmentLayout, TaxRule

TEMPLATES = {
    "revenue": "01-000-4110-0000-000",
    "receivable": "01-000-1210-0000-000",
    "freight": "01-000-4520-0000-000",
    "tax": "01-000-2210-0000-000",
    "discount": "01-000-4190-0000-000",
    "rounding": "01-000-4190-0000-000",
    "clearing": "01-000-1290-0000-000",
}
# Any tax Commerce charged is US sales tax at the standard rate of the mock Fusion's setup.
TAX_RULE = {"tax_regime_code": "US SALES AND USE TAX", "tax_rate_code": "STD", "tax_classification_code": "US_STD"}


def seed_mappings(connection, *, customer_number: str = "1008", site: str = "1042") -> None:
    SegmentLayout.objects.create(
        connection=connection, segment_names="Company, Department, Account, SubAccount, Product"
    )
    for account_class, combination in TEMPLATES.items():
        AccountTemplate.objects.create(connection=connection, account_class=account_class, combination=combination)
    CustomerRule.objects.create(
        connection=connection, match_type="default", bill_to_customer_number=customer_number, bill_to_site=site
    )
    ProductRule.objects.create(connection=connection, match_type="default")
    TaxRule.objects.create(connection=connection, match_type="default", **TAX_RULE)


def order_document(
    entity_id: str = "12345",
    *,
    kind: str = "order",
    order_entity_id: str = "",
    lines: tuple[tuple[str, str, str], ...] = (("LAP-15", "2", "1299.99"),),
    shipping: str = "10.00",
    currency: str = "USD",
) -> SalesDocument:
    sales_lines = tuple(
        SalesLine(
            line_id=str(i),
            sku=sku,
            name=f"Product {sku}",
            qty=Decimal(qty),
            unit_price=Decimal(price),
            row_total=Decimal(qty) * Decimal(price),
        )
        for i, (sku, qty, price) in enumerate(lines, start=1)
    )
    total = sum((line.row_total for line in sales_lines), Decimal(0)) + Decimal(shipping)
    return SalesDocument(
        kind=kind,
        entity_id=entity_id,
        increment_id=f"0000{entity_id}",
        created_at=datetime(2026, 11, 20, 15, 30, tzinfo=UTC),
        currency=currency,
        grand_total=total,
        lines=sales_lines,
        customer=Customer(commerce_id="42", email="buyer@example.com", group_id="1"),
        order_entity_id=order_entity_id or (entity_id if kind == "order" else ""),
        order_increment_id=f"0000{order_entity_id or entity_id}",
        shipping_amount=Decimal(shipping),
    )
