"""SalesDocument: the normalised Commerce document every later step works on. Money is Decimal throughout;
it is stored on the record as JSON with amounts as strings so nothing is lost to floats."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# ISO 4217 minor units where they are not 2.
CURRENCY_EXPONENTS = {
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def currency_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit (Commerce rounds the same way)."""
    return amount.quantize(_minor_unit(currency), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | None, currency: str) -> str:
    """An amount as finance reads it: the currency's decimals, thousands grouped, the code after ("1,299.99 USD")."""
    if amount is None:
        return ""
    return f"{quantize(amount, currency or 'USD'):,} {currency}".strip()


@functools.lru_cache(maxsize=512)
def _minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


@dataclass(frozen=True)
class Customer:
    commerce_id: str = ""  # empty for a guest
    email: str = ""
    group_id: str = ""
    is_guest: bool = False
    company: str = ""  # B2B company name or id when the order carries one
    firstname: str = ""
    lastname: str = ""


@dataclass(frozen=True)
class AppliedTax:
    """One tax Commerce applied (its tax rate's code and title, the percent, the amount), as the order's
    `extension_attributes.applied_taxes` / `item_applied_taxes` report it. A line or the shipping may carry
    several (a state and a county tax); without a breakdown the line's tax_percent is all there is."""

    code: str = ""
    title: str = ""
    percent: Decimal = Decimal("0")
    amount: Decimal = Decimal("0")


@dataclass(frozen=True)
class SalesLine:
    line_id: str
    sku: str
    name: str
    qty: Decimal
    unit_price: Decimal  # excluding tax, before discount
    row_total: Decimal  # qty * unit_price, excluding tax, before discount
    discount: Decimal = Decimal("0")  # positive amount taken off this line (tax included when prices are)
    tax: Decimal = Decimal("0")
    # The tax inside a tax-inclusive discount, which Commerce gives back (discount_tax_compensation_amount):
    # the line adds row_total - discount + tax + this to the grand total.
    discount_tax_compensation: Decimal = Decimal("0")
    tax_percent: Decimal = Decimal("0")
    product_type: str = "simple"
    attribute_set_id: str = ""
    category_ids: tuple[str, ...] = ()
    parent_sku: str = ""  # the configurable or bundle parent, when folded
    taxes: tuple[AppliedTax, ...] = ()  # the line's applied taxes, when Commerce gives the breakdown

    @property
    def net(self) -> Decimal:
        """Excluding tax, after the discount less the tax it carried."""
        return self.row_total - self.discount + self.discount_tax_compensation


@dataclass(frozen=True)
class SalesDocument:
    kind: str  # "order", "invoice" or "creditmemo"
    entity_id: str
    increment_id: str
    created_at: datetime
    currency: str
    grand_total: Decimal
    lines: tuple[SalesLine, ...]
    customer: Customer = field(default_factory=Customer)
    order_entity_id: str = ""
    order_increment_id: str = ""
    base_currency: str = ""
    base_to_order_rate: Decimal | None = None
    store_id: str = ""
    website_id: str = ""
    store_code: str = ""
    purchase_order_number: str = ""
    shipping_amount: Decimal = Decimal("0")  # excluding tax
    shipping_tax: Decimal = Decimal("0")
    shipping_discount: Decimal = Decimal("0")
    shipping_discount_tax_compensation: Decimal = Decimal("0")
    # As Commerce reports it on the header: the items' compensation on an order, items and shipping on an
    # invoice or credit memo. The lines carry their own; this is the fallback when they do not.
    discount_tax_compensation: Decimal = Decimal("0")
    # Paid inside Commerce before the grand total: the grand total is what is left to collect.
    gift_cards_amount: Decimal = Decimal("0")
    customer_balance_amount: Decimal = Decimal("0")  # store credit
    reward_currency_amount: Decimal = Decimal("0")  # reward points, in money
    adjustment_positive: Decimal = Decimal("0")  # credit memo refund adjustment
    adjustment_negative: Decimal = Decimal("0")  # credit memo adjustment fee
    status: str = ""
    # Tax facts: the order's applied taxes, the shipping's, and the country the tax was worked out for (the
    # shipping address's, else the billing address's). Invoices and credit memos take them from their order.
    applied_taxes: tuple[AppliedTax, ...] = ()
    shipping_taxes: tuple[AppliedTax, ...] = ()
    tax_country: str = ""

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal("0")) + self.shipping_tax

    @property
    def discount_total(self) -> Decimal:
        return sum((line.discount for line in self.lines), Decimal("0")) + self.shipping_discount

    @property
    def prepaid_total(self) -> Decimal:
        """Gift cards, store credit and reward points: payments, not price changes."""
        return self.gift_cards_amount + self.customer_balance_amount + self.reward_currency_amount

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SalesDocument:
        values = dict(data)
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        values["customer"] = Customer(**values.get("customer") or {})
        values["lines"] = tuple(
            SalesLine(
                **{
                    **_decimals(SalesLine, line),
                    "category_ids": tuple(line.get("category_ids") or ()),
                    "taxes": _taxes(line.get("taxes")),
                }
            )
            for line in values.get("lines") or ()
        )
        # Documents stored before the tax facts existed have none of these keys: they default to empty.
        values["applied_taxes"] = _taxes(values.get("applied_taxes"))
        values["shipping_taxes"] = _taxes(values.get("shipping_taxes"))
        return cls(**_decimals(cls, values))


def _taxes(items: Any) -> tuple[AppliedTax, ...]:
    return tuple(AppliedTax(**_decimals(AppliedTax, item)) for item in items or () if isinstance(item, dict))


def _decimals(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in names:
            continue
        ftype = str(names[key].type)
        if "Decimal" in ftype and value is not None and not isinstance(value, Decimal):
            value = Decimal(str(value))
        out[key] = value
    return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _to_json(value: Any) -> Any:
    # Runs for every webhook: plain type checks and cached field names, no dataclasses.fields() per call.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is Decimal:
        return str(value)
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        attributes = value.__dict__
        return {name: _to_json(attributes[name]) for name in names}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value
