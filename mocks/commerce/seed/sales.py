"""Sample invoices and credit memo, in the shapes GET /V1/invoices/{id} and GET /V1/creditmemo/{id} answer: the
invoices of the first two orders and a credit memo refunding one bag of the second."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def seed_invoices() -> list[dict[str, Any]]:
    def item(
        entity: int,
        parent: int,
        order_item: int,
        sku: str,
        name: str,
        qty: str,
        price: str,
        row: str,
        tax: str = "0.0000",
        discount: str = "0.0000",
    ) -> dict[str, Any]:
        return {
            "entity_id": entity,
            "parent_id": parent,
            "order_item_id": order_item,
            "product_id": None,
            "sku": sku,
            "name": name,
            "qty": qty,
            "price": price,
            "base_price": price,
            "price_incl_tax": price,
            "row_total": row,
            "base_row_total": row,
            "row_total_incl_tax": f"{Decimal(row) + Decimal(tax):.4f}",
            "tax_amount": tax,
            "discount_amount": discount,
            "base_cost": None,
        }

    common = {
        "state": 2,
        "store_id": 1,
        "order_currency_code": "USD",
        "base_currency_code": "USD",
        "global_currency_code": "USD",
        "store_currency_code": "USD",
        "can_void_flag": 0,
        "email_sent": 1,
        "comments": [],
    }
    return [
        {
            **common,
            "entity_id": 1,
            "increment_id": "000000001",
            "order_id": 1,
            "created_at": "2026-10-01 09:20:00",
            "updated_at": "2026-10-01 09:20:00",
            "grand_total": "27.0000",
            "base_grand_total": "27.0000",
            "subtotal": "22.0000",
            "subtotal_incl_tax": "22.0000",
            "tax_amount": "0.0000",
            "shipping_amount": "5.0000",
            "shipping_incl_tax": "5.0000",
            "discount_amount": "0.0000",
            "total_qty": "1.0000",
            "transaction_id": None,
            "billing_address_id": 2,
            "shipping_address_id": 1,
            "items": [item(1, 1, 1, "WS12-M-Orange", "Radiant Tee-M-Orange", "1.0000", "22.0000", "22.0000")],
        },
        {
            **common,
            "entity_id": 2,
            "increment_id": "000000002",
            "order_id": 2,
            "created_at": "2026-10-12 16:10:00",
            "updated_at": "2026-10-12 16:10:00",
            "grand_total": "131.9100",
            "base_grand_total": "131.9100",
            "subtotal": "120.0000",
            "subtotal_incl_tax": "128.9100",
            "tax_amount": "8.9100",
            "shipping_amount": "15.0000",
            "shipping_incl_tax": "15.0000",
            "discount_amount": "-12.0000",
            "total_qty": "3.0000",
            "transaction_id": None,
            "billing_address_id": 4,
            "shipping_address_id": 3,
            "items": [
                item(
                    2,
                    2,
                    2,
                    "MH01-XS-Black",
                    "Chaz Kangeroo Hoodie",
                    "1.0000",
                    "52.0000",
                    "52.0000",
                    tax="3.8600",
                    discount="5.2000",
                ),
                item(
                    3,
                    2,
                    4,
                    "24-MB01",
                    "Joust Duffle Bag",
                    "2.0000",
                    "34.0000",
                    "68.0000",
                    tax="5.0500",
                    discount="6.8000",
                ),
            ],
        },
    ]


def seed_creditmemos() -> list[dict[str, Any]]:
    return [
        {
            "entity_id": 1,
            "increment_id": "000000001",
            "order_id": 2,
            "invoice_id": 2,
            "creditmemo_status": None,
            "state": 2,
            "store_id": 1,
            "order_currency_code": "USD",
            "base_currency_code": "USD",
            "adjustment": "0.0000",
            "adjustment_positive": "0.0000",
            "adjustment_negative": "0.0000",
            "grand_total": "33.1200",
            "base_grand_total": "33.1200",
            "subtotal": "34.0000",
            "tax_amount": "2.5200",
            "shipping_amount": "0.0000",
            "discount_amount": "-3.4000",
            "created_at": "2026-10-20 08:45:00",
            "updated_at": "2026-10-20 08:45:10",
            "comments": [],
            "items": [
                {
                    "entity_id": 1,
                    "parent_id": 1,
                    "order_item_id": 4,
                    "sku": "24-MB01",
                    "name": "Joust Duffle Bag",
                    "qty": "1.0000",
                    "price": "34.0000",
                    "base_price": "34.0000",
                    "row_total": "34.0000",
                    "tax_amount": "2.5200",
                    "discount_amount": "3.4000",
                    "base_cost": "0.0000",
                }
            ],
        }
    ]
