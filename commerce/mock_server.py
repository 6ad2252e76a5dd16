"""A mock Adobe Commerce (PaaS REST with OAuth 1.0a, SaaS REST with Adobe IMS), like stripe-mock: for tests and
demos only, never for production.

Shapes follow reference/commerce.md: `/rest/<store>/V1/...` (and `/rest/all/V1/...`, where a GET is refused),
`/<tenant>/V1/...` with `Authorization: Bearer` and `x-api-key`, the IMS token endpoint `/ims/token/v3`,
searchCriteria queries answering `{items, search_criteria, total_count}` and errors as
`{"message": "...%1...", "parameters": [...]}`. The PaaS signature check is oauthlib's server-side HMAC-SHA256.
Seeded with sample orders, invoices, a credit memo, customers and products (money as strings such as
"22.0000", as Commerce hands it out). Use it in-process (`MockCommerce().start()`) or as a process
(`python manage.py mock_commerce --port 8802`).
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from fusion.mock_server import (
    DROP,
    Faults,
    Handler,
    MockError,
    MockRequest,
    MockResponse,
    MockServer,
    bearer_token,
    json_response,
)

SALES_ACL = "Magento_Sales::actions_view"
CUSTOMER_ACL = "Magento_Customer::manage"
CATALOG_ACL = "Magento_Catalog::products"
STORE_ACL = "Magento_Backend::store"
OAUTH_TIMESTAMP_WINDOW = 600  # seconds either side of the server's clock
CONDITIONS = (
    "eq",
    "neq",
    "gt",
    "gteq",
    "lt",
    "lteq",
    "like",
    "nlike",
    "in",
    "nin",
    "null",
    "notnull",
    "from",
    "to",
    "finset",
    "moreq",
)
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."


@dataclass
class CommerceFaults(Faults):
    token_lifetime: int = 86399  # IMS tokens live a day


# ---------------------------------------------------------------------------------------------------------------
# Seed data (commerce.md §3 shapes)
# ---------------------------------------------------------------------------------------------------------------


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


def _seed_orders() -> list[dict[str, Any]]:
    jane_billing = _address(
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
    jane_shipping = _address(
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
    order1 = {
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
        "billing_address": jane_billing,
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
                        "address": jane_shipping,
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
    v_billing = _address(
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
    v_shipping = dict(v_billing, address_type="shipping", entity_id=3)
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
    order2 = {
        **copy.deepcopy(order1),
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
        "billing_address": v_billing,
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
                        "address": v_shipping,
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
    guest_billing = _address(
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
    order3 = {
        **copy.deepcopy(order1),
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
        "billing_address": guest_billing,
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
                        "address": dict(guest_billing, address_type="shipping", entity_id=5),
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
    orders: list[dict[str, Any]] = [order1, order2, order3]
    for order in orders:
        for item in order["items"]:
            item["created_at"], item["updated_at"] = order["created_at"], order["updated_at"]
    return orders


def _seed_invoices() -> list[dict[str, Any]]:
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


def _seed_creditmemos() -> list[dict[str, Any]]:
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


def _seed_customers() -> list[dict[str, Any]]:
    def customer(
        cid: int,
        email: str,
        first: str,
        last: str,
        created: str,
        updated: str,
        attributes: list[dict[str, str]],
        addresses: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "group_id": 1,
            "default_billing": str(addresses[0]["id"]) if addresses else None,
            "default_shipping": str(addresses[0]["id"]) if addresses else None,
            "created_at": created,
            "updated_at": updated,
            "created_in": "Default Store View",
            "email": email,
            "firstname": first,
            "lastname": last,
            "store_id": 1,
            "website_id": 1,
            "addresses": addresses,
            "disable_auto_group_change": 0,
            "extension_attributes": {"is_subscribed": False},
            "custom_attributes": attributes,
        }

    def address(
        aid: int,
        cid: int,
        first: str,
        last: str,
        street: str,
        city: str,
        region: str,
        region_id: int,
        postcode: str,
        phone: str,
    ) -> dict[str, Any]:
        return {
            "id": aid,
            "customer_id": cid,
            "region": {"region_code": None, "region": region, "region_id": region_id},
            "region_id": region_id,
            "country_id": "US",
            "street": [street],
            "telephone": phone,
            "postcode": postcode,
            "city": city,
            "firstname": first,
            "lastname": last,
            "default_shipping": True,
            "default_billing": True,
        }

    return [
        customer(
            1,
            "jdoe@example.com",
            "Jane",
            "Doe",
            "2026-09-20 10:00:00",
            "2026-09-20 10:00:00",
            [{"attribute_code": "erp_account_number", "value": "20002"}],
            [address(1, 1, "Jane", "Doe", "123 Oak Ave", "Purchase", "New York", 43, "10577", "512-555-1111")],
        ),
        customer(
            2,
            "roni_cost@example.com",
            "Veronica",
            "Costello",
            "2026-09-25 12:30:00",
            "2026-10-12 16:00:00",
            [],
            [
                address(
                    2,
                    2,
                    "Veronica",
                    "Costello",
                    "6146 Honey Bluff Parkway",
                    "Calder",
                    "Michigan",
                    33,
                    "49628-7978",
                    "(555) 229-3326",
                )
            ],
        ),
        customer(
            3,
            "buyer@csr.example.com",
            "Chris",
            "Rentals",
            "2026-10-02 08:00:00",
            "2026-10-02 08:00:00",
            [{"attribute_code": "erp_account_number", "value": "1008"}],
            [],
        ),
    ]


def _seed_products() -> list[dict[str, Any]]:
    def product(
        pid: int,
        sku: str,
        name: str,
        price: str,
        type_id: str = "simple",
        attributes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": pid,
            "sku": sku,
            "name": name,
            "attribute_set_id": 4,
            "price": price,
            "status": 1,
            "visibility": 4,
            "type_id": type_id,
            "weight": "1.0000",
            "created_at": "2026-09-01 10:00:00",
            "updated_at": "2026-09-01 10:00:00",
            "extension_attributes": {"website_ids": [1]},
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            "custom_attributes": attributes or [{"attribute_code": "tax_class_id", "value": "2"}],
        }

    return [
        product(1553, "WS12-M-Orange", "Radiant Tee-M-Orange", "22.0000"),
        product(1200, "MH01", "Chaz Kangeroo Hoodie", "52.0000", type_id="configurable"),
        product(1201, "MH01-XS-Black", "Chaz Kangeroo Hoodie-XS-Black", "52.0000"),
        product(1, "24-MB01", "Joust Duffle Bag", "34.0000"),
        product(
            2001,
            "SKU-LAPTOP-15",
            "Laptop 15in",
            "1299.9900",
            attributes=[
                {"attribute_code": "tax_class_id", "value": "2"},
                {"attribute_code": "erp_item_status", "value": "Active"},
            ],
        ),
    ]


STORE_CONFIGS = [
    {
        "id": 1,
        "code": "default",
        "website_id": 1,
        "locale": "en_US",
        "base_currency_code": "USD",
        "default_display_currency_code": "USD",
        "timezone": "America/Chicago",
        "weight_unit": "lbs",
        "base_url": "http://shop.example.test/",
        "base_link_url": "http://shop.example.test/",
        "secure_base_url": "https://shop.example.test/",
        "secure_base_link_url": "https://shop.example.test/",
    },
]


# ---------------------------------------------------------------------------------------------------------------
# searchCriteria
# ---------------------------------------------------------------------------------------------------------------

_FILTER_KEY = re.compile(
    r"searchCriteria\[(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type|conditionType)\]"
)
_SORT_KEY = re.compile(r"searchCriteria\[(?:sort_orders|sortOrders)\]\[(\d+)\]\[(field|direction)\]")


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _matches(actual: Any, condition: str, value: str) -> bool:
    if condition == "null":
        return actual is None
    if condition == "notnull":
        return actual is not None
    if condition in ("in", "nin"):
        wanted = [v.strip() for v in value.split(",")]
        found = str(actual) in wanted or (
            _number(actual) is not None and any(_number(actual) == _number(w) for w in wanted)
        )
        return found if condition == "in" else not found
    if condition == "finset":
        return value in str(actual or "").split(",")
    if actual is None:
        return False
    if condition in ("like", "nlike"):
        pattern = "".join(".*" if c == "%" else re.escape(c) for c in value)
        found = re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
        return found if condition == "like" else not found
    left: Any = _number(actual)
    right: Any = _number(value)
    if left is None or right is None:
        left, right = str(actual), value
    op = {
        "eq": "==",
        "neq": "!=",
        "gt": ">",
        "gteq": ">=",
        "moreq": ">=",
        "from": ">=",
        "lt": "<",
        "lteq": "<=",
        "to": "<=",
    }[condition]
    return {
        "==": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def _field_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Decimal, str]]:
    return lambda row: _sort_value(row.get(field))


def _sort_value(value: Any) -> tuple[int, Decimal, str]:
    number = _number(value)
    return (0, number, "") if number is not None else (1, Decimal(0), str(value))


def search(request: MockRequest, rows: list[dict[str, Any]], *, max_page_size: int) -> MockResponse:
    """Answer a searchCriteria query the way the Magento REST repositories do."""
    if not any(key.startswith("searchCriteria") for key in request.query):
        raise MockError(
            400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "searchCriteria"}
        )
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    for key in request.query:
        match = _FILTER_KEY.fullmatch(key)
        if match:
            group, index, part = int(match.group(1)), int(match.group(2)), match.group(3)
            part = "condition_type" if part == "conditionType" else part
            groups.setdefault(group, {}).setdefault(index, {})[part] = request.arg(key) or ""
            continue
        match = _SORT_KEY.fullmatch(key)
        if match:
            sorts.setdefault(int(match.group(1)), {})[match.group(2)] = request.arg(key) or ""
    filter_groups = []
    for group in sorted(groups):
        filters = []
        for index in sorted(groups[group]):
            spec = groups[group][index]
            condition = spec.get("condition_type") or "eq"
            if condition not in CONDITIONS:
                raise MockError(
                    400,
                    'Invalid value of "%value" provided for the %fieldName field.',
                    parameters={"value": condition, "fieldName": "condition_type"},
                )
            if not spec.get("field"):
                raise MockError(
                    400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "field"}
                )
            filters.append({"field": spec["field"], "value": spec.get("value", ""), "condition_type": condition})
        filter_groups.append({"filters": filters})
    # Filters inside a group are OR'd; groups are AND'd.
    rows = [
        r
        for r in rows
        if all(
            any(_matches(r.get(f["field"]), f["condition_type"], f["value"]) for f in g["filters"])
            for g in filter_groups
        )
    ]
    sort_orders = []
    for index in sorted(sorts):
        spec = sorts[index]
        direction = (spec.get("direction") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise MockError(
                400,
                'Invalid value of "%value" provided for the %fieldName field.',
                parameters={"value": direction, "fieldName": "direction"},
            )
        sort_orders.append({"field": spec.get("field", ""), "direction": direction})
    for order in reversed(sort_orders):
        rows = sorted(rows, key=_field_key(order["field"]), reverse=order["direction"] == "DESC")
    total = len(rows)
    criteria: dict[str, Any] = {"filter_groups": filter_groups}
    if sort_orders:
        criteria["sort_orders"] = sort_orders
    size_raw = request.arg("searchCriteria[pageSize]") or request.arg("searchCriteria[page_size]")
    page_raw = request.arg("searchCriteria[currentPage]") or request.arg("searchCriteria[current_page]")
    try:
        size = int(size_raw) if size_raw else None
        page = int(page_raw) if page_raw else 1
    except ValueError:
        raise MockError(400, "The pageSize and currentPage of searchCriteria are numbers.") from None
    if size is not None:
        if size > max_page_size:
            raise MockError(400, "Maximum SearchCriteria pageSize is %max", parameters={"max": max_page_size})
        if size < 1 or page < 1:
            raise MockError(400, "The pageSize and currentPage of searchCriteria must be positive.")
        # Like Magento's collections, a page past the end is clamped to the last page: clients must stop on
        # total_count, not on an empty page.
        last_page = max(1, math.ceil(total / size))
        effective = min(page, last_page)
        rows = rows[(effective - 1) * size : effective * size]
        criteria.update(page_size=size, current_page=page)
    return json_response(200, {"items": rows, "search_criteria": criteria, "total_count": total})


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------


class MockCommerce(MockServer):
    """Adobe Commerce. PaaS: `/rest/<store>/V1/...` signed with OAuth 1.0a HMAC-SHA256 by the configured consumer
    key/secret and access token/secret. SaaS: IMS token endpoint `/ims/token/v3` for `client_id`/`client_secret`,
    then `/<tenant>/V1/...` with `Authorization: Bearer` and `x-api-key: <client_id>`."""

    system = "commerce"
    faults_class = CommerceFaults

    def __init__(
        self,
        *,
        consumer_key: str = "mock-consumer-key",
        consumer_secret: str = "mock-consumer-secret",  # noqa: S107 - the mock's demo credentials
        access_token: str = "mock-access-token",  # noqa: S107
        access_token_secret: str = "mock-access-token-secret",  # noqa: S107
        client_id: str = "mock-ims-client",
        client_secret: str = "mock-ims-secret",  # noqa: S107
        tenant: str = "mocktenant",
        store_codes: tuple[str, ...] = ("default",),
        max_page_size: int = 300,
        seed: int | None = None,
        **faults: Any,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.store_codes = tuple(store_codes)
        self.max_page_size = max_page_size
        self._resource_table = [(m, re.compile(p + r"\Z"), acl, h) for m, p, acl, h in self._resources()]
        super().__init__(seed=seed, **faults)

    # -- data -----------------------------------------------------------------------------------------------
    def _seed_data(self) -> None:
        self.orders = {o["entity_id"]: o for o in _seed_orders()}
        self.invoices = {i["entity_id"]: i for i in _seed_invoices()}
        self.creditmemos = {c["entity_id"]: c for c in _seed_creditmemos()}
        self.customers = {c["id"]: c for c in _seed_customers()}
        self.products = {p["sku"]: p for p in _seed_products()}
        self.product_overrides: dict[str, dict[str, dict[str, Any]]] = {}
        self.product_writes: list[dict[str, str]] = []
        self.nonces: set[tuple[str, str, str]] = set()
        self.last_oauth_failure: dict[str, str] = {}

    def _stamp(self) -> str:
        return self.utcnow().strftime("%Y-%m-%d %H:%M:%S")

    def add_document(self, kind: str, given: dict[str, Any]) -> dict[str, Any]:
        """Add (or replace, by entity_id) an order, invoice or credit memo, filling ids and timestamps; an update
        moves updated_at so the backfill poll sees it."""
        store = {"orders": self.orders, "invoices": self.invoices, "creditmemos": self.creditmemos}.get(kind)
        if store is None:
            raise MockError(404, f"Documents are orders, invoices or creditmemos, not {kind}.")
        if not isinstance(given, dict):
            raise MockError(400, "A document is a JSON object.")
        with self._lock:
            entity_id = given.get("entity_id") or max(store, default=0) + 1
            try:
                entity_id = int(entity_id)
            except (TypeError, ValueError):
                raise MockError(400, "entity_id is a number.") from None
            now = self._stamp()
            if entity_id in store:
                document = {**store[entity_id], **given}
            elif kind == "orders":
                template = copy.deepcopy(self.orders.get(1) or _seed_orders()[0])
                document = {**template, "created_at": now, "status_histories": [], **given}
            else:
                document = {"created_at": now, "items": [], "state": 2, "store_id": 1, **given}
            document["entity_id"] = entity_id
            if "increment_id" not in given and entity_id not in store:
                document["increment_id"] = f"{entity_id:09d}"
            document["updated_at"] = given.get("updated_at") or now
            store[entity_id] = document
            self.counters[f"{kind}_added"] += 1
            return document

    def state(self) -> dict[str, Any]:
        base = super().state()
        with self._lock:
            base.update(
                orders=len(self.orders),
                invoices=len(self.invoices),
                creditmemos=len(self.creditmemos),
                customers=len(self.customers),
                products=len(self.products),
                customers_created=self.counters["customers_created"],
                customers_updated=self.counters["customers_updated"],
                products_created=self.counters["products_created"],
                products_updated=self.counters["products_updated"],
                product_writes=list(self.product_writes),
                oauth_failures=self.counters["oauth_failures"],
                last_oauth_failure=dict(self.last_oauth_failure),
            )
        return base

    # -- routing ---------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Handler]]:
        methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
        return [
            ("POST", r"/ims/token/v3", self.ims_token),
            *[(m, r"/rest/V1/(?P<rest>.+)", self.paas) for m in methods],
            *[(m, r"/rest/(?P<store>[a-z0-9_]+)/V1/(?P<rest>.+)", self.paas) for m in methods],
            *[(m, r"/(?P<tenant>[A-Za-z0-9_-]+)/V1/(?P<rest>.+)", self.saas) for m in methods],
        ]

    def _resources(self) -> list[tuple[str, str, str, Handler]]:
        return [
            ("GET", r"orders/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.orders)),
            ("GET", r"orders", SALES_ACL, self.search_of(lambda: self.orders)),
            ("GET", r"invoices/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.invoices)),
            ("GET", r"invoices", SALES_ACL, self.search_of(lambda: self.invoices)),
            ("GET", r"creditmemo/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.creditmemos)),
            ("GET", r"creditmemos", SALES_ACL, self.search_of(lambda: self.creditmemos)),
            ("GET", r"customers/search", CUSTOMER_ACL, self.search_of(lambda: self.customers)),
            ("GET", r"customers/(?P<id>\d+)", CUSTOMER_ACL, self.get_of(lambda: self.customers)),
            ("PUT", r"customers/(?P<id>\d+)", CUSTOMER_ACL, self.update_customer),
            ("POST", r"customers", CUSTOMER_ACL, self.create_customer),
            ("GET", r"products/(?P<sku>[^/]+)", CATALOG_ACL, self.get_product),
            ("PUT", r"products/(?P<sku>[^/]+)", CATALOG_ACL, self.save_product),
            ("POST", r"products", CATALOG_ACL, self.save_product),
            ("GET", r"store/storeConfigs", STORE_ACL, self.store_configs),
        ]

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *super()._control_routes(),
            ("POST", r"/__mock__/(?P<kind>orders|invoices|creditmemos)", self._control_add),
        ]

    def _control_add(self, request: MockRequest) -> MockResponse:
        data = request.json()
        documents = [
            self.add_document(request.path_args["kind"], d) for d in (data if isinstance(data, list) else [data])
        ]
        return json_response(201, documents if isinstance(data, list) else documents[0])

    def render_error(self, request: MockRequest, error: MockError) -> MockResponse:
        if request.path == "/ims/token/v3":
            return json_response(
                error.status, {"error": error.code or "server_error", "error_description": error.message}, error.headers
            )
        if error.code.isdigit():  # the Adobe API gateway in front of SaaS
            return json_response(error.status, {"error_code": error.code, "message": error.message}, error.headers)
        parameters = error.parameters if error.parameters is not None else []
        return json_response(error.status, {"message": error.message, "parameters": parameters}, error.headers)

    def _resource(self, request: MockRequest, store: str) -> tuple[str, Handler]:
        rest = request.path_args["rest"]
        allowed = False
        for method, pattern, acl, handler in self._resource_table:
            match = pattern.match(rest)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            request.path_args.update(match.groupdict(), store=store)
            return acl, handler
        if allowed:
            raise MockError(405, "Request does not match any route.")
        raise MockError(404, "Request does not match any route.")

    def _check_store(self, request: MockRequest, store: str) -> None:
        if store == "all":
            if request.method == "GET":
                raise MockError(400, "Cannot perform GET operation with store code 'all'")
        elif store not in self.store_codes:
            raise MockError(404, "The store that was requested wasn't found. Verify the store and try again.")

    # -- PaaS: OAuth 1.0a ------------------------------------------------------------------------------------
    def paas(self, request: MockRequest) -> MockResponse:
        store = request.path_args.get("store") or "default"
        acl, handler = self._resource(request, store)
        self._verify_oauth1(request, acl)
        self._check_store(request, store)
        self.check_forbidden_for(acl)
        return handler(request)

    def _oauth_refused(self, reason: str, acl: str, base_string: str = "") -> MockError:
        with self._lock:
            self.counters["oauth_failures"] += 1
            self.last_oauth_failure = {"reason": reason, "signature_base_string": base_string}
        # Magento answers every OAuth failure the same way; the reason is for whoever debugs the mock.
        return MockError(401, NOT_AUTHORIZED, parameters={"resources": acl}, headers={"X-Mock-Reason": reason})

    def _verify_oauth1(self, request: MockRequest, acl: str) -> None:
        authorization = request.header("Authorization")
        if not authorization.lower().startswith("oauth "):
            raise self._oauth_refused("no OAuth Authorization header", acl)
        headers = {"Authorization": authorization}
        form = "application/x-www-form-urlencoded" in request.header("Content-Type")
        body = request.body.decode("utf-8", errors="replace") if form else ""
        try:
            params = signature.collect_parameters(
                uri_query=request.raw_query, body=body, headers=headers, exclude_oauth_signature=False
            )
        except ValueError:
            raise self._oauth_refused("the Authorization header cannot be parsed", acl) from None
        oauth = dict(p for p in params if p[0].startswith("oauth_"))
        missing = [
            n
            for n in (
                "oauth_consumer_key",
                "oauth_token",
                "oauth_signature_method",
                "oauth_signature",
                "oauth_timestamp",
                "oauth_nonce",
            )
            if not oauth.get(n)
        ]
        if missing:
            raise self._oauth_refused(f"missing {', '.join(missing)}", acl)
        if oauth["oauth_signature_method"] != "HMAC-SHA256":
            raise MockError(400, "Signature method %1 is not supported", parameters=[oauth["oauth_signature_method"]])
        if not secrets.compare_digest(oauth["oauth_consumer_key"], self.consumer_key):
            raise self._oauth_refused("unknown consumer key", acl)
        if not secrets.compare_digest(oauth["oauth_token"], self.access_token):
            raise self._oauth_refused("unknown access token", acl)
        try:
            timestamp = int(oauth["oauth_timestamp"])
        except ValueError:
            raise self._oauth_refused("oauth_timestamp is not a number", acl) from None
        if abs(time.time() - timestamp) > OAUTH_TIMESTAMP_WINDOW:
            raise self._oauth_refused("oauth_timestamp is out of range", acl)
        params_without_signature = [(k, v) for k, v in params if k != "oauth_signature"]
        base_string = signature.signature_base_string(
            request.method,
            signature.base_string_uri(request.url),
            signature.normalize_parameters(params_without_signature),
        )
        checked = OAuthRequest(request.url, request.method, body, headers)
        checked.signature = oauth["oauth_signature"]
        checked.params = params_without_signature
        if not signature.verify_hmac_sha256(checked, self.consumer_secret, self.access_token_secret):
            raise self._oauth_refused("signature mismatch", acl, base_string)
        nonce = (oauth["oauth_consumer_key"], oauth["oauth_nonce"], oauth["oauth_timestamp"])
        with self._lock:
            if nonce in self.nonces:
                raise MockError(
                    401,
                    "The nonce is already being used by the consumer with ID %1",
                    parameters=["1"],
                    headers={"X-Mock-Reason": "nonce reused"},
                )
            self.nonces.add(nonce)

    # -- SaaS: IMS -------------------------------------------------------------------------------------------
    def ims_token(self, request: MockRequest) -> MockResponse:
        with self._lock:
            self.counters["token_requests"] += 1
        form = request.form()
        if not secrets.compare_digest(form.get("client_id", ""), self.client_id):
            raise MockError(400, "invalid client_id parameter", code="invalid_client")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            raise MockError(401, "invalid client_secret parameter", code="invalid_client")
        if form.get("grant_type") != "client_credentials":
            raise MockError(400, "invalid grant_type parameter", code="unsupported_grant_type")
        scopes = [s.strip() for s in form.get("scope", "").split(",") if s.strip()]
        if "commerce.accs" not in scopes:
            raise MockError(400, "invalid_scope: commerce.accs is required", code="invalid_scope")
        token, lifetime = self.issue_token()
        return json_response(200, {"access_token": token, "token_type": "bearer", "expires_in": lifetime})

    def saas(self, request: MockRequest) -> MockResponse:
        if request.path_args["tenant"] != self.tenant:
            raise MockError(404, "Request does not match any route.")
        api_key = request.header("x-api-key")
        if not api_key:
            raise MockError(403, "Api Key is required", code="403000")
        if not secrets.compare_digest(api_key, self.client_id):
            raise MockError(403, "Api Key is invalid", code="403003")
        token = bearer_token(request)
        if not token or not self.token_valid(token):
            raise MockError(
                401,
                "Oauth token is not valid",
                code="401013",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        store = request.header("Store") or "default"
        acl, handler = self._resource(request, store)
        self._check_store(request, store)
        self.check_forbidden_for(acl)
        return handler(request)

    def check_forbidden_for(self, acl: str) -> None:
        if self.faults.forbid:
            raise MockError(403, NOT_AUTHORIZED, parameters={"resources": acl})

    # -- resources -------------------------------------------------------------------------------------------
    def get_of(self, store_of) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            with self._lock:
                row = store_of().get(int(request.path_args["id"]))
                row = copy.deepcopy(row)
            if row is None:
                raise MockError(404, NOT_FOUND)
            return json_response(200, row)

        return handler

    def search_of(self, store_of) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            with self._lock:
                rows = copy.deepcopy(list(store_of().values()))
            return search(request, rows, max_page_size=self.max_page_size)

        return handler

    def store_configs(self, request: MockRequest) -> MockResponse:
        return json_response(200, [dict(c) for c in STORE_CONFIGS if c["code"] in self.store_codes] or STORE_CONFIGS)

    @staticmethod
    def _payload(request: MockRequest, key: str) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise MockError(400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": key})
        return body[key]

    @staticmethod
    def _check_custom_attributes(value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(a, dict) and a.get("attribute_code") for a in value):
            raise MockError(400, "custom_attributes is a list of {attribute_code, value}.")
        return value

    @staticmethod
    def _merge_attributes(existing: list[dict[str, Any]], given: list[dict[str, Any]]) -> list[dict[str, Any]]:
        merged = {a["attribute_code"]: a for a in existing}
        merged.update(
            {a["attribute_code"]: {"attribute_code": a["attribute_code"], "value": a.get("value")} for a in given}
        )
        return list(merged.values())

    def create_customer(self, request: MockRequest) -> MockResponse:
        given = self._payload(request, "customer")
        for name in ("email", "firstname", "lastname"):
            if not given.get(name):
                raise MockError(400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": name})
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        with self._lock:
            website = given.get("website_id", 1)
            if any(
                c["email"].lower() == str(given["email"]).lower() and c["website_id"] == website
                for c in self.customers.values()
            ):
                raise MockError(400, "A customer with the same email address already exists in an associated website.")
            customer_id = max(self.customers, default=0) + 1
            now = self._stamp()
            customer = {
                "id": customer_id,
                "group_id": 1,
                "created_at": now,
                "updated_at": now,
                "created_in": "Default Store View",
                "store_id": 1,
                "website_id": website,
                "addresses": [],
                "disable_auto_group_change": 0,
                "extension_attributes": {"is_subscribed": False},
                **{k: v for k, v in given.items() if k not in ("id", "custom_attributes")},
                "custom_attributes": attributes,
            }
            customer["id"] = customer_id
            self.customers[customer_id] = customer
            self.counters["customers_created"] += 1
        if self.maybe_drop():
            return DROP
        return json_response(200, copy.deepcopy(customer))

    def update_customer(self, request: MockRequest) -> MockResponse:
        given = self._payload(request, "customer")
        customer_id = int(request.path_args["id"])
        for name in ("email", "firstname", "lastname"):
            if not given.get(name):
                raise MockError(400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": name})
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        with self._lock:
            existing = self.customers.get(customer_id)
            if existing is None:
                raise MockError(
                    404,
                    "No such entity with %fieldName = %fieldValue",
                    parameters={"fieldName": "customerId", "fieldValue": customer_id},
                )
            updated = {**existing, **{k: v for k, v in given.items() if k not in ("id", "custom_attributes")}}
            # An omitted addresses key keeps the stored addresses; custom attributes merge by code.
            updated["custom_attributes"] = self._merge_attributes(existing.get("custom_attributes", []), attributes)
            updated.update(id=customer_id, updated_at=self._stamp())
            self.customers[customer_id] = updated
            self.counters["customers_updated"] += 1
            return json_response(200, copy.deepcopy(updated))

    def _product_view(self, sku: str, store: str) -> dict[str, Any]:
        product = copy.deepcopy(self.products[sku])
        override = self.product_overrides.get(sku, {}).get(store, {})
        for key, value in override.items():
            if key == "custom_attributes":
                product["custom_attributes"] = self._merge_attributes(product["custom_attributes"], value)
            else:
                product[key] = value
        return product

    def get_product(self, request: MockRequest) -> MockResponse:
        sku = unquote(request.path_args["sku"])
        with self._lock:
            if sku not in self.products:
                raise MockError(404, "The product that was requested doesn't exist. Verify the product and try again.")
            return json_response(200, self._product_view(sku, request.path_args["store"]))

    def save_product(self, request: MockRequest) -> MockResponse:
        """PUT /products/{sku} and POST /products both save: an unknown SKU is created, a known one updated. A
        write through a store code lands as that store view's override; through `all` it is global."""
        given = self._payload(request, "product")
        sku = unquote(request.path_args["sku"]) if "sku" in request.path_args else str(given.get("sku") or "")
        if not sku:
            raise MockError(400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "sku"})
        if given.get("sku", sku) != sku:
            raise MockError(400, "The sku in the body does not match the sku in the URL.")
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        store = request.path_args["store"]
        fields = {k: v for k, v in given.items() if k not in ("id", "sku", "custom_attributes")}
        with self._lock:
            now = self._stamp()
            if sku not in self.products:
                if not given.get("name"):
                    raise MockError(
                        400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "name"}
                    )
                product_id = max((p["id"] for p in self.products.values()), default=0) + 1
                self.products[sku] = {
                    "id": product_id,
                    "sku": sku,
                    "attribute_set_id": 4,
                    "price": "0.0000",
                    "status": 1,
                    "visibility": 4,
                    "type_id": "simple",
                    "created_at": now,
                    "extension_attributes": {"website_ids": [1]},
                    "product_links": [],
                    "options": [],
                    "media_gallery_entries": [],
                    "tier_prices": [],
                    **fields,
                    "custom_attributes": attributes,
                    "updated_at": now,
                }
                self.counters["products_created"] += 1
            elif store == "all":
                product = self.products[sku]
                product.update(fields)
                product["custom_attributes"] = self._merge_attributes(product["custom_attributes"], attributes)
                product["updated_at"] = now
                self.counters["products_updated"] += 1
            else:
                override = self.product_overrides.setdefault(sku, {}).setdefault(store, {})
                override.update(fields)
                override["custom_attributes"] = self._merge_attributes(
                    override.get("custom_attributes", []), attributes
                )
                self.products[sku]["updated_at"] = now
                self.counters["products_updated"] += 1
            self.product_writes.append({"sku": sku, "scope": store, "method": request.method})
            view = self._product_view(sku, store if store != "all" else "default")
        if request.method == "POST" and self.maybe_drop():
            return DROP
        return json_response(200, view)
