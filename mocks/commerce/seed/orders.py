"""Sample orders, in the shape GET /V1/orders/{id} answers (sales order repository): Jane Doe's paid order of one
simple product, Veronica Costello's order with a configurable product (its parent and child items), a coupon
and tax, partly refunded, and a guest's pending order not yet invoiced. Money is a string such as "22.0000",
as Commerce hands it out."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any


def seed_orders() -> list[dict[str, Any]]:
    """The three seeded orders; each item's created_at and updated_at are its order's."""
    jane = _jane_order()
    seeded = [jane, _veronica_order(jane), _guest_order(jane)]
    for order in seeded:
        for item in order["items"]:
            item["created_at"], item["updated_at"] = order["created_at"], order["updated_at"]
    return seeded


def _jane_order() -> dict[str, Any]:
    """A customer's order of one T-shirt, invoiced and paid by check."""
    billing = _address(
        "billing",
        1,
        2,
        "Jane",
        "Doe",
        "123 Oak Ave",
        "Purchase",
        "New York",
        "NY",
        "10577",
        "US",
        "512-555-1111",
        "jdoe@example.com",
    )
    shipping = _address(
        "shipping",
        1,
        1,
        "Jane",
        "Doe",
        "123 Oak Ave",
        "Purchase",
        "New York",
        "NY",
        "10577",
        "US",
        "512-555-1111",
        "jdoe@example.com",
    )
    return {
        "entity_id": 1,
        "increment_id": "000000001",
        "state": "processing",
        "status": "processing",
        "created_at": "2026-10-01 09:15:00",
        "updated_at": "2026-10-01 09:20:00",
        "store_id": 1,
        "customer_id": 1,
        "customer_email": "jdoe@example.com",
        "customer_firstname": "Jane",
        "customer_lastname": "Doe",
        "customer_group_id": 1,
        "customer_is_guest": 0,
        "order_currency_code": "USD",
        "base_currency_code": "USD",
        "global_currency_code": "USD",
        "store_currency_code": "USD",
        "grand_total": "27.0000",
        "base_grand_total": "27.0000",
        "subtotal": "22.0000",
        "subtotal_incl_tax": "22.0000",
        "tax_amount": "0.0000",
        "shipping_amount": "5.0000",
        "shipping_incl_tax": "5.0000",
        "shipping_tax_amount": "0.0000",
        "discount_amount": "0.0000",
        "total_qty_ordered": "1.0000",
        "total_invoiced": "27.0000",
        "total_paid": "27.0000",
        "total_refunded": None,
        "total_due": "0.0000",
        "total_item_count": 1,
        "shipping_description": "Flat Rate - Fixed",
        "quote_id": 11,
        "ext_order_id": None,
        "items": [
            _order_item(1, 1, "WS12-M-Orange", "Radiant Tee-M-Orange", "1.0000", "22.0000", "22.0000", product_id=1553)
        ],
        "billing_address": billing,
        "payment": {
            "entity_id": 1,
            "parent_id": 1,
            "method": "checkmo",
            "amount_ordered": "27.0000",
            "amount_paid": "27.0000",
            "base_amount_ordered": "27.0000",
            "additional_information": ["Check / Money order"],
            "cc_last4": None,
            "account_status": None,
        },
        "status_histories": [],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "method": "flatrate_flatrate",
                        "address": shipping,
                        "total": {
                            "shipping_amount": "5.0000",
                            "shipping_incl_tax": "5.0000",
                            "shipping_tax_amount": "0.0000",
                        },
                    },
                    "items": [{"item_id": 1, "sku": "WS12-M-Orange", "qty_ordered": "1.0000"}],
                }
            ]
        },
    }


def _veronica_order(jane: dict[str, Any]) -> dict[str, Any]:
    """A customer's order of a configurable hoodie and two bags with a 10% coupon and tax, paid by bank transfer,
    one bag refunded; the fields it does not set are those of Jane's order."""
    billing = _address(
        "billing",
        2,
        4,
        "Veronica",
        "Costello",
        "6146 Honey Bluff Parkway",
        "Calder",
        "Michigan",
        "MI",
        "49628-7978",
        "US",
        "(555) 229-3326",
        "roni_cost@example.com",
    )
    shipping = dict(billing, address_type="shipping", entity_id=3)
    hoodie = _order_item(
        2,
        2,
        "MH01-XS-Black",
        "Chaz Kangeroo Hoodie",
        "1.0000",
        "52.0000",
        "52.0000",
        tax="3.8600",
        tax_percent="8.2500",
        discount="5.2000",
        product_type="configurable",
        product_id=1200,
    )
    hoodie_child = _order_item(
        3,
        2,
        "MH01-XS-Black",
        "Chaz Kangeroo Hoodie-XS-Black",
        "1.0000",
        "0.0000",
        "0.0000",
        product_id=1201,
        parent_item_id=2,
    )
    bag = _order_item(
        4,
        2,
        "24-MB01",
        "Joust Duffle Bag",
        "2.0000",
        "34.0000",
        "68.0000",
        tax="5.0500",
        tax_percent="8.2500",
        discount="6.8000",
        product_id=1,
    )
    return {
        **copy.deepcopy(jane),
        "entity_id": 2,
        "increment_id": "000000002",
        "created_at": "2026-10-12 16:02:41",
        "updated_at": "2026-10-20 08:45:10",
        "customer_id": 2,
        "customer_email": "roni_cost@example.com",
        "customer_firstname": "Veronica",
        "customer_lastname": "Costello",
        "grand_total": "131.9100",
        "base_grand_total": "131.9100",
        "subtotal": "120.0000",
        "subtotal_incl_tax": "128.9100",
        "tax_amount": "8.9100",
        "shipping_amount": "15.0000",
        "shipping_incl_tax": "15.0000",
        "discount_amount": "-12.0000",
        "discount_description": "AUTUMN10",
        "coupon_code": "AUTUMN10",
        "total_qty_ordered": "3.0000",
        "total_invoiced": "131.9100",
        "total_paid": "131.9100",
        "total_refunded": "33.1200",
        "total_item_count": 3,
        "shipping_description": "Best Way - Table Rate",
        "quote_id": 12,
        "items": [hoodie, hoodie_child, bag],
        "billing_address": billing,
        "payment": {
            "entity_id": 2,
            "parent_id": 2,
            "method": "banktransfer",
            "amount_ordered": "131.9100",
            "amount_paid": "131.9100",
            "base_amount_ordered": "131.9100",
            "additional_information": ["Bank Transfer Payment", ""],
            "cc_last4": None,
            "account_status": None,
        },
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "method": "tablerate_bestway",
                        "address": shipping,
                        "total": {
                            "shipping_amount": "15.0000",
                            "shipping_incl_tax": "15.0000",
                            "shipping_tax_amount": "0.0000",
                        },
                    },
                    "items": [
                        {"item_id": 2, "sku": "MH01-XS-Black", "qty_ordered": "1.0000"},
                        {"item_id": 4, "sku": "24-MB01", "qty_ordered": "2.0000"},
                    ],
                }
            ]
        },
    }


def _guest_order(jane: dict[str, Any]) -> dict[str, Any]:
    """A guest's pending order of a laptop, not invoiced; the fields it does not set are those of Jane's order."""
    billing = _address(
        "billing",
        3,
        6,
        "Sam",
        "Guest",
        "1 Market St",
        "San Francisco",
        "California",
        "CA",
        "94105",
        "US",
        "415-555-0100",
        "sam.guest@example.net",
    )
    return {
        **copy.deepcopy(jane),
        "entity_id": 3,
        "increment_id": "000000003",
        "state": "new",
        "status": "pending",
        "created_at": "2026-11-02 11:30:05",
        "updated_at": "2026-11-02 11:30:06",
        "customer_id": None,
        "customer_email": "sam.guest@example.net",
        "customer_firstname": "Sam",
        "customer_lastname": "Guest",
        "customer_group_id": 0,
        "customer_is_guest": 1,
        "grand_total": "1309.9900",
        "base_grand_total": "1309.9900",
        "subtotal": "1299.9900",
        "subtotal_incl_tax": "1299.9900",
        "shipping_amount": "10.0000",
        "shipping_incl_tax": "10.0000",
        "total_qty_ordered": "1.0000",
        "total_invoiced": None,
        "total_paid": None,
        "total_due": "1309.9900",
        "quote_id": 13,
        "items": [
            dict(
                _order_item(5, 3, "SKU-LAPTOP-15", "Laptop 15in", "1.0000", "1299.9900", "1299.9900", product_id=2001),
                qty_invoiced="0.0000",
            )
        ],
        "billing_address": billing,
        "payment": {
            "entity_id": 3,
            "parent_id": 3,
            "method": "checkmo",
            "amount_ordered": "1309.9900",
            "amount_paid": None,
            "base_amount_ordered": "1309.9900",
            "additional_information": ["Check / Money order"],
            "cc_last4": None,
            "account_status": None,
        },
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "method": "flatrate_flatrate",
                        "address": dict(billing, address_type="shipping", entity_id=5),
                        "total": {
                            "shipping_amount": "10.0000",
                            "shipping_incl_tax": "10.0000",
                            "shipping_tax_amount": "0.0000",
                        },
                    },
                    "items": [{"item_id": 5, "sku": "SKU-LAPTOP-15", "qty_ordered": "1.0000"}],
                }
            ]
        },
    }


def _address(
    kind: str,
    parent: int,
    entity: int,
    first: str,
    last: str,
    street: str,
    city: str,
    region: str,
    region_code: str,
    postcode: str,
    country: str,
    phone: str,
    email: str,
) -> dict[str, Any]:
    return {
        "address_type": kind,
        "entity_id": entity,
        "parent_id": parent,
        "firstname": first,
        "lastname": last,
        "street": [street],
        "city": city,
        "region": region,
        "region_code": region_code,
        "postcode": postcode,
        "country_id": country,
        "telephone": phone,
        "email": email,
    }


def _order_item(
    item_id: int,
    order_id: int,
    sku: str,
    name: str,
    qty: str,
    price: str,
    row_total: str,
    tax: str = "0.0000",
    tax_percent: str = "0.0000",
    discount: str = "0.0000",
    product_type: str = "simple",
    parent_item_id: int | None = None,
    product_id: int = 0,
) -> dict[str, Any]:
    incl = Decimal(price) + (Decimal(tax) / Decimal(qty) if Decimal(qty) else 0)
    return {
        "item_id": item_id,
        "order_id": order_id,
        "parent_item_id": parent_item_id,
        "quote_item_id": item_id + 100,
        "product_id": product_id,
        "product_type": product_type,
        "sku": sku,
        "name": name,
        "qty_ordered": qty,
        "qty_invoiced": qty,
        "qty_shipped": "0.0000",
        "qty_refunded": "0.0000",
        "qty_canceled": "0.0000",
        "price": price,
        "base_price": price,
        "original_price": price,
        "price_incl_tax": f"{incl:.4f}",
        "row_total": row_total,
        "base_row_total": row_total,
        "row_total_incl_tax": f"{Decimal(row_total) + Decimal(tax):.4f}",
        "tax_amount": tax,
        "base_tax_amount": tax,
        "tax_percent": tax_percent,
        "discount_amount": discount,
        "base_discount_amount": discount,
        "discount_percent": "0.0000",
        "weight": "1.0000",
        "is_virtual": 0,
        "created_at": "",
        "updated_at": "",
    }
