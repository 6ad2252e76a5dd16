"""Sample Commerce webhooks for trying a connection: orders, invoices and credit memos in the shape Commerce's
observer webhooks send them (money as four-decimal strings, applied taxes in extension_attributes), signed
with the connection's active HMAC key exactly as a Commerce module signing its webhooks does, and sent to the
connector's own webhook address. Used by `manage.py send_test_webhook` and the demo."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests
from django.conf import settings
from django.urls import reverse

from connector.models import Connection, WebhookKey

from .envelopes import CREDIT_MEMO, INVOICE, ORDER

KINDS = (ORDER, INVOICE, CREDIT_MEMO)
EVENTS = {
    ORDER: "observer.sales_order_place_after",
    INVOICE: "observer.sales_order_invoice_save_after",
    CREDIT_MEMO: "observer.sales_order_creditmemo_save_after",
}
ENTITY_KEYS = {ORDER: "order", INVOICE: "invoice", CREDIT_MEMO: "creditmemo"}
# The mock Commerce's catalogue (mocks/commerce/seed/catalog.py): SKU -> product id, name, price.
CATALOGUE: dict[str, tuple[int, str, str]] = {
    "WS12-M-Orange": (1553, "Radiant Tee-M-Orange", "22.00"),
    "MH01-XS-Black": (1201, "Chaz Kangeroo Hoodie-XS-Black", "52.00"),
    "24-MB01": (1, "Joust Duffle Bag", "34.00"),
    "SKU-LAPTOP-15": (2001, "Laptop 15in", "1299.99"),
    "SKU-DOCK-USB4": (2002, "USB4 docking station", "189.00"),
}
DEFAULT_LINES: tuple[tuple[str, int], ...] = (("WS12-M-Orange", 2), ("24-MB01", 1))
TAX_CODE, TAX_PERCENT = "US-NY-*-Rate 1", Decimal("8.25")
SHIPPING = Decimal("5.00")
CENT = Decimal("0.01")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Buyer:
    customer_id: int | None  # None: a guest
    email: str
    firstname: str
    lastname: str
    street: str = "123 Oak Ave"
    city: str = "Purchase"
    region_code: str = "NY"
    postcode: str = "10577"


JANE = Buyer(1, "jdoe@example.com", "Jane", "Doe")
GUEST = Buyer(None, "guest@example.com", "Gwen", "Guest", "1 Main St", "Rochester", "NY", "14604")


class SampleWebhookError(Exception):
    """Why a sample webhook cannot be built or sent, in words for the person who asked."""


def _money(value: Decimal) -> str:
    return f"{value:.4f}"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(n: int) -> str:
    return f"{n:09d}"


def parse_lines(specs: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`SKU` or `SKU:QTY` items (from the command line) -> (sku, qty) pairs; an unknown SKU is an error."""
    lines = []
    for spec in specs:
        sku, _, qty = spec.partition(":")
        if sku not in CATALOGUE:
            raise SampleWebhookError(f"Unknown SKU {sku!r}; the sample catalogue has {', '.join(CATALOGUE)}.")
        if qty and not (qty.isdigit() and int(qty) > 0):
            raise SampleWebhookError(f"{spec!r}: the quantity after the colon must be a whole number above 0.")
        lines.append((sku, int(qty or 1)))
    return tuple(lines)


def _item(order_id: int, item_id: int, sku: str, qty: int) -> dict[str, Any]:
    product_id, name, price = CATALOGUE[sku]
    row = Decimal(price) * qty
    tax = _cents(row * TAX_PERCENT / 100)
    return {
        "item_id": item_id,
        "order_id": order_id,
        "parent_item_id": None,
        "product_id": product_id,
        "product_type": "simple",
        "sku": sku,
        "name": name,
        "qty_ordered": _money(Decimal(qty)),
        "price": _money(Decimal(price)),
        "base_price": _money(Decimal(price)),
        "original_price": _money(Decimal(price)),
        "row_total": _money(row),
        "row_total_incl_tax": _money(row + tax),
        "tax_amount": _money(tax),
        "tax_percent": _money(TAX_PERCENT),
        "discount_amount": "0.0000",
    }


def _address(kind: str, buyer: Buyer) -> dict[str, Any]:
    return {
        "address_type": kind,
        "firstname": buyer.firstname,
        "lastname": buyer.lastname,
        "street": [buyer.street],
        "city": buyer.city,
        "region_code": buyer.region_code,
        "postcode": buyer.postcode,
        "country_id": "US",
        "telephone": "512-555-0100",
        "email": buyer.email,
    }


def _applied(amount: Decimal) -> dict[str, Any]:
    return {"code": TAX_CODE, "title": TAX_CODE, "percent": float(TAX_PERCENT), "amount": float(amount)}


def sample_order(
    number: int,
    *,
    lines: Sequence[tuple[str, int]] = DEFAULT_LINES,
    buyer: Buyer = JANE,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Order `number` (entity id and increment id) as Commerce's order repository hands it out: each line taxed
    at 8.25 %, flat-rate shipping of 5.00, paid by check."""
    stamp = _stamp(created_at or datetime.now(UTC))
    items = [_item(number, number * 100 + i, sku, qty) for i, (sku, qty) in enumerate(lines, start=1)]
    subtotal = sum((Decimal(i["row_total"]) for i in items), Decimal(0))
    tax = sum((Decimal(i["tax_amount"]) for i in items), Decimal(0))
    total = subtotal + tax + SHIPPING
    guest = buyer.customer_id is None
    return {
        "entity_id": number,
        "increment_id": _number(number),
        "state": "new",
        "status": "pending",
        "created_at": stamp,
        "updated_at": stamp,
        "store_id": 1,
        "customer_id": buyer.customer_id,
        "customer_email": buyer.email,
        "customer_firstname": None if guest else buyer.firstname,
        "customer_lastname": None if guest else buyer.lastname,
        "customer_group_id": 0 if guest else 1,
        "customer_is_guest": 1 if guest else 0,
        "order_currency_code": "USD",
        "base_currency_code": "USD",
        "global_currency_code": "USD",
        "store_currency_code": "USD",
        "base_to_order_rate": "1.0000",
        "subtotal": _money(subtotal),
        "tax_amount": _money(tax),
        "shipping_amount": _money(SHIPPING),
        "shipping_incl_tax": _money(SHIPPING),
        "shipping_tax_amount": "0.0000",
        "discount_amount": "0.0000",
        "grand_total": _money(total),
        "base_grand_total": _money(total),
        "total_qty_ordered": _money(Decimal(sum(qty for _, qty in lines))),
        "shipping_description": "Flat Rate - Fixed",
        "items": items,
        "billing_address": _address("billing", buyer),
        "payment": {"method": "checkmo", "amount_ordered": _money(total), "additional_information": ["Check"]},
        "extension_attributes": {
            "shipping_assignments": [
                {"shipping": {"method": "flatrate_flatrate", "address": _address("shipping", buyer)}, "items": []}
            ],
            "applied_taxes": [_applied(tax)],
            "item_applied_taxes": [
                {"type": "product", "item_id": i["item_id"], "applied_taxes": [_applied(Decimal(i["tax_amount"]))]}
                for i in items
            ],
        },
    }


def _child_items(order: dict[str, Any], number: int, skus: Sequence[str] | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for item in order["items"]:
        if skus is not None and item["sku"] not in skus:
            continue
        items.append(
            {
                "entity_id": number * 100 + len(items) + 1,
                "parent_id": number,
                "order_item_id": item["item_id"],
                "product_id": item["product_id"],
                "sku": item["sku"],
                "name": item["name"],
                "qty": item["qty_ordered"],
                "price": item["price"],
                "row_total": item["row_total"],
                "tax_amount": item["tax_amount"],
                "discount_amount": item["discount_amount"],
            }
        )
    if not items:
        raise SampleWebhookError(f"Order {order['increment_id']} has none of the SKUs {', '.join(skus or [])}.")
    return items


def _child(
    order: dict[str, Any], number: int, items: list[dict[str, Any]], shipping: Decimal, when: datetime | None
) -> dict[str, Any]:
    subtotal = sum((Decimal(i["row_total"]) for i in items), Decimal(0))
    tax = sum((Decimal(i["tax_amount"]) for i in items), Decimal(0))
    stamp = _stamp(when or datetime.now(UTC))
    return {
        "entity_id": number,
        "increment_id": _number(number),
        "order_id": order["entity_id"],
        "order_increment_id": order["increment_id"],
        "store_id": order["store_id"],
        "state": 2,
        "created_at": stamp,
        "updated_at": stamp,
        "order_currency_code": "USD",
        "base_currency_code": "USD",
        "subtotal": _money(subtotal),
        "tax_amount": _money(tax),
        "shipping_amount": _money(shipping),
        "discount_amount": "0.0000",
        "grand_total": _money(subtotal + tax + shipping),
        "total_qty": _money(sum((Decimal(i["qty"]) for i in items), Decimal(0))),
        "items": items,
    }


def sample_invoice(order: dict[str, Any], number: int, *, created_at: datetime | None = None) -> dict[str, Any]:
    """Commerce invoice `number` for the whole of `order`, shipping included."""
    return _child(order, number, _child_items(order, number, None), SHIPPING, created_at)


def sample_creditmemo(
    order: dict[str, Any],
    number: int,
    *,
    skus: Sequence[str] | None = None,
    invoice_id: int | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Credit memo `number` refunding the lines of `order` with the given SKUs (default: its first line), no
    shipping."""
    memo = _child(
        order, number, _child_items(order, number, skus or [order["items"][0]["sku"]]), Decimal(0), created_at
    )
    memo.update(
        {
            "invoice_id": invoice_id or order["entity_id"],
            "creditmemo_status": 2,
            "adjustment_positive": "0.0000",
            "adjustment_negative": "0.0000",
            "adjustment": "0.0000",
        }
    )
    return memo


def sample_envelope(kind: str, entity: dict[str, Any]) -> bytes:
    """The webhook body Commerce sends for `entity`: its observer event with the entity under data."""
    key = ENTITY_KEYS[kind]
    data = {key: entity, "data_object": {"entity_id": entity["entity_id"], "increment_id": entity["increment_id"]}}
    return json.dumps({"eventName": EVENTS[kind], "data": data}, separators=(",", ":")).encode()


def sample_body(kind: str, number: int, *, lines: Sequence[tuple[str, int]] = DEFAULT_LINES) -> bytes:
    """A whole document of `kind` numbered `number`: an order, or an invoice or credit memo of order `number`
    (the order built from the same lines)."""
    if kind not in KINDS:
        raise SampleWebhookError(f"Unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    order = sample_order(number, lines=lines)
    if kind == ORDER:
        return sample_envelope(ORDER, order)
    if kind == INVOICE:
        return sample_envelope(INVOICE, sample_invoice(order, number))
    return sample_envelope(CREDIT_MEMO, sample_creditmemo(order, number))


# --- signing and sending ------------------------------------------------------------------------------------


def signing_key(connection: Connection) -> WebhookKey:
    """The newest active HMAC key of the connection (the only scheme a sender other than Adobe can sign with)."""
    key = connection.webhook_keys.filter(active=True, scheme=WebhookKey.Scheme.HMAC).order_by("-created_at").first()
    if key is None or not key.secret:
        raise SampleWebhookError(
            f"Connection {connection.slug!r} has no active HMAC webhook key to sign with: add one "
            "(Connector > Connections > Webhook keys, or webhook_keys in apply_connection)."
        )
    return key


def signature_headers(key: WebhookKey, body: bytes) -> dict[str, str]:
    """The signature header an HMAC key expects: HMAC-SHA256 of the raw body, hex or base64, after its prefix."""
    digest = hmac.new(key.secret.encode(), body, hashlib.sha256).digest()
    value = base64.b64encode(digest).decode() if key.encoding == WebhookKey.Encoding.BASE64 else digest.hex()
    return {key.header_name or "X-Commerce-Signature": f"{key.prefix}{value}"}


def webhook_url(connection: Connection) -> str:
    """Where Commerce sends this connection's webhooks: CONNECTOR_PUBLIC_URL (else 127.0.0.1:8000) + the path."""
    base = (settings.CONNECTOR_PUBLIC_URL or DEFAULT_BASE_URL).rstrip("/")
    return base + reverse("commerce-webhook", args=[connection.slug])


@dataclass(frozen=True)
class SentWebhook:
    url: str
    kind: str
    number: int
    status: int
    answer: str


def sample_webhook_send(
    *,
    connection: Connection,
    kind: str,
    number: int,
    lines: Sequence[tuple[str, int]] = DEFAULT_LINES,
    url: str | None = None,
    body: bytes | None = None,
    session: requests.Session | None = None,
) -> SentWebhook:
    """Build (or take) a sample document, sign it with the connection's active HMAC key and POST it to the
    connection's webhook address. The key's secret is read only to sign; it is never shown or returned."""
    key = signing_key(connection)
    body = body if body is not None else sample_body(kind, number, lines=lines)
    target = url or webhook_url(connection)
    headers = {"Content-Type": "application/json", **signature_headers(key, body)}
    try:
        response = (session or requests).post(target, data=body, headers=headers, timeout=(5, 30))
    except requests.RequestException as exc:
        raise SampleWebhookError(f"Could not reach {target}: {type(exc).__name__}. Is the web process running?")
    return SentWebhook(target, kind, number, response.status_code, response.text[:500])
