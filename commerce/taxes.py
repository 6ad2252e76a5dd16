"""The taxes Commerce applied, as the order reports them: `extension_attributes.applied_taxes` (per order: each
tax rate's code, title, percent and amount), `extension_attributes.item_applied_taxes` (per item, `type`
`product` with its `item_id`, or `shipping`, each with its own applied taxes) and the country the tax was worked
out for (the shipping address's, else the billing address's). Raw webhook model data may carry the same lists at
the top of the entity. Invoices and credit memos carry none of this: they take it from their order."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.documents import AppliedTax, SalesDocument


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, dict):  # PHP arrays keyed by id serialise as objects
        value = list(value.values())
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(value: Any) -> Decimal:
    try:
        number = Decimal(str(value)) if value not in (None, "") and not isinstance(value, bool) else Decimal(0)
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def _applied(items: Any) -> tuple[AppliedTax, ...]:
    taxes = []
    for item in _list(items):
        if not isinstance(item, dict):
            continue
        code, title = _text(item.get("code")), _text(item.get("title"))
        if code or title or item.get("percent") not in (None, ""):
            taxes.append(AppliedTax(code, title, _number(item.get("percent")), _number(item.get("amount"))))
    return tuple(taxes)


def _lists(order: Mapping[str, Any], key: str) -> Any:
    extension = _obj(order.get("extension_attributes"))
    return extension.get(key) if extension.get(key) not in (None, "") else order.get(key)


def tax_country(order: Mapping[str, Any]) -> str:
    """The shipping address's country (Commerce taxes by it by default), else the billing address's."""
    for assignment in _list(_obj(order.get("extension_attributes")).get("shipping_assignments")):
        country = _text(_obj(_obj(_obj(assignment).get("shipping")).get("address")).get("country_id"))
        if country:
            return country.upper()
    for address in (order.get("shipping_address"), order.get("billing_address")):
        country = _text(_obj(address).get("country_id"))
        if country:
            return country.upper()
    return ""


def with_tax_facts(document: SalesDocument, order: Mapping[str, Any] | None) -> SalesDocument:
    """The document with its order's applied taxes: per line (by order item id), for the shipping, for the whole
    order, and the tax country. Without an order payload the document is returned as it is."""
    if not order:
        return document
    by_item: dict[str, tuple[AppliedTax, ...]] = {}
    shipping: tuple[AppliedTax, ...] = ()
    for entry in _list(_lists(order, "item_applied_taxes")):
        entry = _obj(entry)
        taxes = _applied(entry.get("applied_taxes"))
        if _text(entry.get("type")) == "shipping":
            shipping = shipping + taxes
        elif _text(entry.get("item_id")):
            by_item[_text(entry.get("item_id"))] = by_item.get(_text(entry.get("item_id")), ()) + taxes
    lines = tuple(
        dataclasses.replace(line, taxes=by_item[line.line_id]) if by_item.get(line.line_id) else line
        for line in document.lines
    )
    return dataclasses.replace(
        document,
        lines=lines,
        applied_taxes=_applied(_lists(order, "applied_taxes")) or document.applied_taxes,
        shipping_taxes=shipping or document.shipping_taxes,
        tax_country=tax_country(order) or document.tax_country,
    )
