"""Money on the plan's lines: a quantity and unit price Fusion multiplies back to the exact amount, and how
far the plan's total may drift from Commerce's by rounding alone."""

from __future__ import annotations

from decimal import Decimal

from connector.documents import SalesDocument, currency_exponent, quantize

# The most decimals a unit selling price may carry.
UNIT_PRICE_PLACES = 6


def _trim(value: Decimal, min_places: int) -> Decimal:
    """Drop trailing zeros but keep at least min_places decimals (never exponent notation)."""
    exponent = -min_places
    text = f"{value:f}"
    if "." in text:
        decimals = text.split(".")[1].rstrip("0")
        exponent = -max(len(decimals), min_places)
    return value.quantize(Decimal(1).scaleb(exponent))


def price_line(amount: Decimal, qty: Decimal, currency: str) -> tuple[Decimal, Decimal, str]:
    """Quantity and unit selling price whose product rounds back to exactly `amount`.

    Fusion computes the line amount as quantity x unit price. When no unit price with up to six decimals gives
    the amount back (an odd quantity such as 3 for 10.00), the line goes as quantity 1 at the line amount and the
    description says so, rather than let Fusion's rounding change the total."""
    places = currency_exponent(currency)
    if qty > 0:
        unit = (amount / qty).quantize(Decimal(1).scaleb(-UNIT_PRICE_PLACES))
        if quantize(unit * qty, currency) == amount:
            return _trim(qty, 0), _trim(unit, places), ""
    return Decimal("1"), amount, f" ({_trim(qty, 0)} x)" if qty not in (0, 1) else ""


def compensation_note(discount: Decimal, compensation: Decimal) -> str:
    """How a discount line's amount came about, when a discount tax compensation reduced it."""
    return f" ({discount} less {compensation} discount tax compensation)" if compensation else ""


def commerce_line_count(document: SalesDocument) -> int:
    """How many lines Commerce rounded on its own: items, shipping and the credit memo adjustments, counted
    before our rounding so amounts that round to zero here still count."""
    return len(document.lines) + sum(
        1
        for present in (
            document.shipping_amount
            or document.shipping_discount
            or document.shipping_tax
            or document.shipping_discount_tax_compensation,
            document.adjustment_positive,
            document.adjustment_negative,
        )
        if present
    )


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount: 0.01 for USD, 1 for JPY, 0.001 for KWD."""
    return Decimal(1).scaleb(-currency_exponent(currency))


def spread(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """`total` shared out in proportion to `weights` (negative weights count as nothing), each share rounded to
    the currency and the cents left over going to the last one, so the shares add up to `total` exactly. Without
    any weight, all of it goes to the last one."""
    if not weights:
        return []
    counted = [max(weight, Decimal(0)) for weight in weights]
    whole = sum(counted, Decimal(0))
    if not whole:
        return [Decimal(0)] * (len(weights) - 1) + [total]
    shares = [quantize(total * weight / whole, currency) for weight in counted]
    shares[-1] += total - sum(shares, Decimal(0))
    return shares
