"""Commerce entities -> SalesDocument (the envelope around them is read in commerce/envelopes.py).

The entity is raw model data: numbers often come as strings ("200.0000", "3.000000"), sometimes mixed
with real numbers. Every value is coerced here, and money is Decimal from the start (never float).
REST answers (the backfill) have the same entity shapes and go through the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from commerce.taxes import with_tax_facts
from connector.documents import Customer, SalesDocument, SalesLine, quantize

from .envelopes import CREDIT_MEMO, INVOICE, ORDER, UnreadablePayload

UNIT_PRICE_PLACES = Decimal("0.0001")  # Magento keeps four decimals on prices
# What a record holds: amounts in DecimalField(19, 4) (below 10^15), ids and numbers in 64 characters. A document
# outside these is unreadable (parked for review), never a database error.
AMOUNT_LIMIT = Decimal(10) ** 15
ID_MAX_CHARS = 64


# --- values --------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is str:  # nearly always: Commerce sends numbers and ids as strings
        return value.strip()
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _decimal(value: Any, *, field: str = "", required: bool = False) -> Decimal:
    if value is None or value == "":
        if required:
            raise UnreadablePayload(f"{field} is missing")
        return Decimal("0")
    if isinstance(value, bool):
        raise UnreadablePayload(f"{field} is not a number: {value!r}")
    try:
        # str() first: a float 0.1 becomes Decimal("0.1"), not its binary expansion. Decimal() allows the
        # surrounding whitespace Commerce sometimes leaves.
        number = Decimal(value if type(value) is str else str(value))
    except (InvalidOperation, ValueError):
        raise UnreadablePayload(f"{field} is not a number: {str(value)[:40]!r}")
    if not number.is_finite():
        raise UnreadablePayload(f"{field} is not a finite number")
    if abs(number) >= AMOUNT_LIMIT:
        raise UnreadablePayload(f"{field} is out of range: {str(value)[:40]!r} (at most 15 digits before the point)")
    return number


def _id(value: Any, *, field: str) -> str:
    text = _text(value)
    if len(text) > ID_MAX_CHARS:
        raise UnreadablePayload(f"{field} is longer than {ID_MAX_CHARS} characters: {text[:40]!r}...")
    return text


def _places(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _tidy(qty: Decimal) -> Decimal:
    """ "3.000000" -> 3, "1.5000" -> 1.5 (quantities keep their meaning, not Magento's padding)."""
    return qty.quantize(Decimal(1)) if qty == qty.to_integral_value() else qty.normalize()


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _flag(value: Any) -> bool:
    return _text(value).lower() in {"1", "true", "yes"}


def _when(value: Any, *, field: str) -> datetime:
    text = _text(value)
    if not text:
        raise UnreadablePayload(f"{field} is missing")
    try:
        # Commerce: "YYYY-MM-DD HH:MM:SS" in UTC with no zone; I/O Events and REST may send ISO 8601.
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UnreadablePayload(f"{field} is not a date: {text[:40]!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entity_id(entity: Mapping[str, Any]) -> str:
    return _id(entity.get("entity_id") or entity.get("id"), field="entity_id")


def _money(entity: Mapping[str, Any], key: str, currency: str, *, prefix: str = "") -> Decimal:
    return quantize(_decimal(entity.get(key), field=f"{prefix}{key}"), currency)


# Adobe Commerce (not Open Source) payments that come off the grand total. Raw model data (webhooks) carries them
# on the entity; REST carries them in extension_attributes.
PREPAID_KEYS = ("gift_cards_amount", "customer_balance_amount", "reward_currency_amount")


def _prepaid(entity: Mapping[str, Any], key: str, currency: str) -> Decimal:
    value = entity.get(key)
    if value in (None, ""):
        value = _obj(entity.get("extension_attributes")).get(key)
    return quantize(abs(_decimal(value, field=key)), currency)


def _currency(entity: Mapping[str, Any], order: Mapping[str, Any] | None) -> str:
    for source in (entity, order or {}):
        for key in ("order_currency_code", "base_currency_code", "store_currency_code", "global_currency_code"):
            code = _text(source.get(key)).upper()
            if code:
                if len(code) != 3 or not code.isalpha():
                    raise UnreadablePayload(f"{key} is not a currency code: {code[:10]!r}")
                return code
    raise UnreadablePayload("no currency code (order_currency_code)")


# --- lines ---------------------------------------------------------------------------------------------


def _items(entity: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = entity.get("items")
    if isinstance(items, dict):  # PHP arrays keyed by id serialise as objects
        items = list(items.values())
    if not isinstance(items, list) or not items:
        raise UnreadablePayload("the document has no items")
    if not all(isinstance(i, dict) for i in items):
        raise UnreadablePayload("an item is not an object")
    return items


def _line(
    item: Mapping[str, Any],
    *,
    qty_key: str,
    currency: str,
    sku: str = "",
    parent_sku: str = "",
    name: str = "",
    product_type: str = "",
) -> SalesLine:
    line_id = _text(item.get("item_id") or item.get("order_item_id") or item.get("entity_id"))
    qty = _decimal(item.get(qty_key, item.get("qty")), field=f"items[].{qty_key}")
    price = _decimal(item.get("price"), field="items[].price")
    row_total = item.get("row_total")
    row = _decimal(row_total, field="items[].row_total") if row_total not in (None, "") else price * qty
    if abs(row) >= AMOUNT_LIMIT:
        raise UnreadablePayload("items[].row_total (price x quantity) is out of range")
    options = _obj(item.get("product_option"))
    return SalesLine(
        line_id=line_id,
        sku=sku or _text(item.get("sku")),
        name=name or _text(item.get("name")),
        qty=_tidy(qty),
        unit_price=price.quantize(UNIT_PRICE_PLACES) if _places(price) > 4 else price,
        row_total=quantize(row, currency),
        discount=quantize(abs(_decimal(item.get("discount_amount"), field="items[].discount_amount")), currency),
        tax=quantize(_decimal(item.get("tax_amount"), field="items[].tax_amount"), currency),
        discount_tax_compensation=_money(item, "discount_tax_compensation_amount", currency, prefix="items[]."),
        tax_percent=_decimal(item.get("tax_percent"), field="items[].tax_percent"),
        product_type=product_type or _text(item.get("product_type")) or "simple",
        attribute_set_id=_text(item.get("attribute_set_id") or options.get("attribute_set_id")),
        parent_sku=parent_sku,
    )


def _order_lines(items: list[dict[str, Any]], currency: str) -> tuple[SalesLine, ...]:
    """Fold Magento's parent/child rows. A configurable product is a parent row carrying the price plus a
    child row carrying the simple product's SKU: one line, child's SKU, parent's money. A bundle with a fixed
    price is priced on the parent row (children are components: one line); with a dynamic price the children
    carry the money (one line each, parent_sku set)."""
    by_id = {_text(i.get("item_id")): i for i in items if _text(i.get("item_id"))}
    children: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        parent_id = _text(item.get("parent_item_id"))
        if parent_id and parent_id in by_id:
            children.setdefault(parent_id, []).append(item)
    lines: list[SalesLine] = []
    for item in items:
        parent_id = _text(item.get("parent_item_id"))
        if parent_id and parent_id in by_id:
            continue  # handled with its parent
        kids = children.get(_text(item.get("item_id")), [])
        if not kids:
            lines.append(_line(item, qty_key="qty_ordered", currency=currency))
            continue
        product_type = _text(item.get("product_type"))
        parent_row = _decimal(item.get("row_total"), field="items[].row_total")
        if product_type == "configurable" or (parent_row != 0 and len(kids) == 1 and product_type != "bundle"):
            child = kids[0]
            parent_sku = _text(item.get("product_sku")) or (
                _text(item.get("sku")) if _text(item.get("sku")) != _text(child.get("sku")) else ""
            )
            lines.append(
                _line(
                    item,
                    qty_key="qty_ordered",
                    currency=currency,
                    sku=_text(child.get("sku")),
                    parent_sku=parent_sku,
                    product_type=product_type or "configurable",
                )
            )
        elif parent_row != 0:  # fixed-price bundle: the parent carries the money
            lines.append(_line(item, qty_key="qty_ordered", currency=currency))
        else:  # dynamic bundle: the children carry the money
            for kid in kids:
                lines.append(_line(kid, qty_key="qty_ordered", currency=currency, parent_sku=_text(item.get("sku"))))
    return tuple(lines)


def _unpriced(item: Mapping[str, Any]) -> bool:
    return (
        _decimal(item.get("row_total"), field="items[].row_total") == 0
        and _decimal(item.get("price"), field="items[].price") == 0
    )


def _document_lines(items: list[dict[str, Any]], currency: str) -> tuple[SalesLine, ...]:
    """Invoice and credit memo items name their order item but not its parent. Child rows of a configurable
    carry no money and repeat the parent's SKU: drop those; keep every row that carries money."""
    if any(_text(i.get("parent_item_id")) for i in items):
        folded = _order_lines(
            [{**i, "item_id": i.get("order_item_id") or i.get("item_id"), "qty_ordered": i.get("qty")} for i in items],
            currency,
        )
        return folded
    priced_skus = {_text(i.get("sku")) for i in items if not _unpriced(i)}
    lines = []
    for item in items:
        zero = _unpriced(item)
        if zero and _text(item.get("sku")) in priced_skus:
            continue
        if zero and _decimal(item.get("qty"), field="items[].qty") == 0:
            continue
        lines.append(_line(item, qty_key="qty", currency=currency))
    if not lines:
        raise UnreadablePayload("no item carries a quantity or an amount")
    return tuple(lines)


# --- documents -----------------------------------------------------------------------------------------


def _customer(entity: Mapping[str, Any], order: Mapping[str, Any] | None) -> Customer:
    source = entity if "customer_email" in entity or "customer_id" in entity else (order or entity)
    billing = _obj(source.get("billing_address"))
    customer_id = _text(source.get("customer_id"))
    guest = _flag(source.get("customer_is_guest")) or not customer_id
    return Customer(
        commerce_id="" if guest else customer_id,
        email=_text(source.get("customer_email") or billing.get("email")),
        group_id=_text(source.get("customer_group_id")),
        is_guest=guest,
        company=_text(billing.get("company")),
        firstname=_text(source.get("customer_firstname") or billing.get("firstname")),
        lastname=_text(source.get("customer_lastname") or billing.get("lastname")),
    )


def _common(entity: Mapping[str, Any], kind: str, currency: str, order: Mapping[str, Any] | None) -> dict[str, Any]:
    entity_id = _entity_id(entity)
    increment_id = _id(entity.get("increment_id"), field="increment_id")
    if not entity_id and not increment_id:
        raise UnreadablePayload(f"the {kind} has neither entity_id nor increment_id")
    base = _text(entity.get("base_currency_code") or (order or {}).get("base_currency_code")).upper()
    rate_value = entity.get("base_to_order_rate", (order or {}).get("base_to_order_rate"))
    rate = _decimal(rate_value, field="base_to_order_rate") if rate_value not in (None, "") else None
    created = entity.get("created_at") or entity.get("updated_at") or (order or {}).get("created_at")
    return {
        "kind": kind,
        "entity_id": entity_id,
        "increment_id": increment_id,
        "created_at": _when(created, field="created_at"),
        "currency": currency,
        "grand_total": quantize(_decimal(entity.get("grand_total"), field="grand_total", required=True), currency),
        "base_currency": base if len(base) == 3 else "",
        "base_to_order_rate": rate,
        "store_id": _text(entity.get("store_id") or (order or {}).get("store_id")),
        "shipping_amount": _money(entity, "shipping_amount", currency),
        "shipping_tax": _money(entity, "shipping_tax_amount", currency),
        "shipping_discount": quantize(
            abs(_decimal(entity.get("shipping_discount_amount"), field="shipping_discount_amount")), currency
        ),
        "shipping_discount_tax_compensation": _money(entity, "shipping_discount_tax_compensation_amount", currency),
        "discount_tax_compensation": _money(entity, "discount_tax_compensation_amount", currency),
        **{key: _prepaid(entity, key, currency) for key in PREPAID_KEYS},
        "status": _text(entity.get("status") or entity.get("state")),
    }


def order_document(order: Mapping[str, Any]) -> SalesDocument:
    currency = _currency(order, None)
    common = _common(order, ORDER, currency, None)
    payment = _obj(order.get("payment"))
    document = SalesDocument(
        **common,
        lines=_order_lines(_items(order), currency),
        customer=_customer(order, None),
        order_entity_id=common["entity_id"],
        order_increment_id=common["increment_id"],
        purchase_order_number=_text(payment.get("po_number")),
    )
    return with_tax_facts(document, order)


def _shipping_discount(
    entity: Mapping[str, Any], lines: tuple[SalesLine, ...], currency: str, given: Decimal
) -> Decimal:
    """Invoices and credit memos have no shipping_discount_amount: their discount_amount covers the items' and the
    shipping's discounts, so the shipping's is the part the items do not account for (never more than the
    shipping itself; anything else is left for the totals check to show)."""
    if entity.get("shipping_discount_amount") not in (None, ""):
        return given
    if any(item.get("discount_amount") in (None, "") for item in _items(entity) if not _unpriced(item)):
        return given  # items that do not say their discount: the rest is not known to be the shipping's
    header = quantize(abs(_decimal(entity.get("discount_amount"), field="discount_amount")), currency)
    rest = header - sum((line.discount for line in lines), Decimal("0"))
    shipping = _money(entity, "shipping_incl_tax", currency) or (
        _money(entity, "shipping_amount", currency) + _money(entity, "shipping_tax_amount", currency)
    )
    return rest if 0 < rest <= shipping else given


def invoice_document(invoice: Mapping[str, Any], *, order: Mapping[str, Any] | None = None) -> SalesDocument:
    return _order_child_document(invoice, INVOICE, "invoice", order)


def creditmemo_document(memo: Mapping[str, Any], *, order: Mapping[str, Any] | None = None) -> SalesDocument:
    document = _order_child_document(memo, CREDIT_MEMO, "credit memo", order)
    return replace(
        document,
        adjustment_positive=_money(memo, "adjustment_positive", document.currency),
        adjustment_negative=_money(memo, "adjustment_negative", document.currency),
    )


def _order_child_document(
    entity: Mapping[str, Any], kind: str, noun: str, order: Mapping[str, Any] | None
) -> SalesDocument:
    """An invoice or credit memo: its order from the argument or from the entity, its lines as the order's."""
    order = order or (entity.get("order") if isinstance(entity.get("order"), dict) else None)
    currency = _currency(entity, order)
    common = _common(entity, kind, currency, order)
    order_id = _id(entity.get("order_id") or (order or {}).get("entity_id"), field="order_id")
    if not order_id:
        raise UnreadablePayload(f"the {noun} has no order_id")
    lines = _document_lines(_items(entity), currency)
    common["shipping_discount"] = _shipping_discount(entity, lines, currency, common["shipping_discount"])
    document = SalesDocument(
        **common,
        lines=lines,
        customer=_customer(entity, order),
        order_entity_id=order_id,
        order_increment_id=_text(entity.get("order_increment_id") or (order or {}).get("increment_id")),
    )
    return with_tax_facts(document, order)


def document_from_entity(kind: str, entity: Mapping[str, Any]) -> SalesDocument:
    builders: dict[str, Callable[[Mapping[str, Any]], SalesDocument]] = {
        ORDER: order_document,
        INVOICE: invoice_document,
        CREDIT_MEMO: creditmemo_document,
    }
    try:
        document = builders[kind](entity)
    except UnreadablePayload:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:  # a shape we did not foresee
        raise UnreadablePayload(f"the {kind} could not be read ({type(exc).__name__})") from exc
    _amounts_in_range(document)
    return document


def _amounts_in_range(document: SalesDocument) -> None:
    """Every amount of the document, given or computed (a row total is price x quantity), below AMOUNT_LIMIT."""
    for owner, where in ((document, ""), *((line, f"items[{n}].") for n, line in enumerate(document.lines))):
        for name, value in vars(owner).items():
            if isinstance(value, Decimal) and abs(value) >= AMOUNT_LIMIT:
                raise UnreadablePayload(f"{where}{name} is out of range (at most 15 digits before the point)")
