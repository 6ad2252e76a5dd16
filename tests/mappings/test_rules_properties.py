"""Property: for any order Commerce can total, the plan's total equals the Commerce grand total to the minor unit,
and the sales journal balances, in both tax modes (manual tax lines, or Fusion computes) and both freight modes
(allocated over the lines, or at the header). Commerce rounds per line and then sums; the plan rounds per amount,
so the generated orders exercise the rounding line too. Orders may come from a tax-inclusive catalogue (the
discount carries tax, given back as discount tax compensation), may carry Commerce's per-item tax breakdown, and
may be partly paid by gift card, store credit or reward points (payments Commerce takes off its grand total). The
Fusion body built from the plan bills exactly what the plan says it must."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import event, given, settings
from hypothesis import strategies as st

from connector.documents import AppliedTax, Customer, SalesDocument, SalesLine, currency_exponent, quantize
from fusion.invoices import billed_total, credit_memo_payload, invoice_payload, payload_total
from mappings.rules import ConnectionDefaults, resolve
from tests.mappings.test_rules import DEFAULTS, ruleset

CURRENCIES = ["JPY", "KRW", "USD", "EUR", "KWD", "BHD"]  # 0, 2 and 3 decimals

money = st.decimals(min_value=D("0"), max_value=D("5000"), places=4, allow_nan=False, allow_infinity=False)
fraction = st.decimals(min_value=D("0"), max_value=D("1"), places=3)
tax_rates = st.sampled_from([D("0"), D("5"), D("7.25"), D("8.875"), D("19"), D("20")])
quantities = st.one_of(st.integers(min_value=1, max_value=40).map(D), st.sampled_from([D("0.5"), D("1.25"), D("2.5")]))


@st.composite
def tax_inclusive_lines(draw, index: int, currency: str) -> SalesLine:
    """Amounts as Commerce stores them for a catalogue priced with tax (each rounded): the discount is taken off
    the price with tax, tax is due on what is left, and the difference is the discount tax compensation."""

    def q(amount: D) -> D:
        return quantize(amount, currency)

    qty = draw(st.integers(min_value=1, max_value=40).map(D))
    price_incl_tax = draw(money)
    rate = draw(tax_rates)
    row_incl_tax = q(qty * price_incl_tax)
    row_total = q(row_incl_tax * 100 / (100 + rate))
    discount = q(row_incl_tax * draw(fraction))
    tax = q((row_incl_tax - discount) * rate / (100 + rate))
    compensation = row_incl_tax - row_total - tax if discount else D("0")
    if not discount:
        tax = row_incl_tax - row_total
    return SalesLine(
        line_id=str(index),
        sku=draw(st.sampled_from(["LAP-15", "LAP-17", "MOUSE", "CHAIR-1"])),
        name="Thing",
        qty=qty,
        unit_price=row_total / qty,
        row_total=row_total,
        discount=discount,
        tax=tax,
        tax_percent=rate,
        discount_tax_compensation=compensation,
    )


@st.composite
def sales_lines(draw, index: int) -> SalesLine:
    qty = draw(quantities)
    unit_price = draw(money)
    row_total = qty * unit_price  # unrounded, as Commerce keeps it before totalling
    discount = (row_total * draw(fraction)).quantize(D("0.0001"))
    rate = draw(tax_rates)
    tax = ((row_total - discount) * rate / 100).quantize(D("0.0001"))
    return SalesLine(
        line_id=str(index),
        sku=draw(st.sampled_from(["LAP-15", "LAP-17", "MOUSE", "CHAIR-1"])),
        name="Thing",
        qty=qty,
        unit_price=unit_price,
        row_total=row_total,
        discount=discount,
        tax=tax,
        tax_percent=rate,
    )


@st.composite
def documents(draw) -> SalesDocument:
    currency = draw(st.sampled_from(CURRENCIES))
    count = draw(st.integers(min_value=1, max_value=8))
    tax_inclusive = draw(st.booleans())
    lines = tuple(
        draw(tax_inclusive_lines(i, currency) if tax_inclusive and draw(st.booleans()) else sales_lines(i))
        for i in range(1, count + 1)
    )
    shipping = draw(st.one_of(st.just(D("0")), money.map(lambda m: (m / 50).quantize(D("0.0001")))))
    shipping_discount = (shipping * draw(fraction)).quantize(D("0.0001"))
    shipping_tax = ((shipping - shipping_discount) * draw(tax_rates) / 100).quantize(D("0.0001"))
    shipping_compensation = D("0")
    if tax_inclusive and shipping:  # shipping priced with tax, discounted with its tax
        shipping, rate = quantize(shipping, currency), draw(tax_rates)
        shipping_incl_tax = quantize(shipping * (100 + rate) / 100, currency)
        shipping_discount = quantize(shipping_incl_tax * draw(fraction), currency)
        shipping_tax = quantize((shipping_incl_tax - shipping_discount) * rate / (100 + rate), currency)
        shipping_compensation = shipping_incl_tax - shipping - shipping_tax if shipping_discount else D("0")
        if not shipping_discount:
            shipping_tax = shipping_incl_tax - shipping
    if draw(st.booleans()):  # Commerce's breakdown: a state and a city tax sharing each taxed line
        lines = tuple(
            dataclasses.replace(
                ln,
                taxes=(
                    AppliedTax("US-STATE", "State", ln.tax_percent, ln.tax * D("0.75")),
                    AppliedTax("US-CITY", "City", D("1"), ln.tax * D("0.25")),
                ),
            )
            if ln.tax
            else ln
            for ln in lines
        )
    kind = draw(st.sampled_from(["order", "invoice", "creditmemo"]))
    adjustment_positive = draw(st.sampled_from([D("0"), D("3.5"), D("10")])) if kind == "creditmemo" else D("0")
    adjustment_negative = draw(st.sampled_from([D("0"), D("1.25")])) if kind == "creditmemo" else D("0")

    def q(amount: D) -> D:
        return quantize(amount, currency)

    # Commerce: each line's total rounded, then summed (or, in some setups, each stored amount rounded).
    if draw(st.booleans()):
        grand_total = sum((q(ln.row_total - ln.discount + ln.tax + ln.discount_tax_compensation) for ln in lines), D(0))
        grand_total += q(shipping - shipping_discount + shipping_tax + shipping_compensation)
    else:
        grand_total = sum(
            (q(ln.row_total) - q(ln.discount) + q(ln.tax) + q(ln.discount_tax_compensation) for ln in lines), D(0)
        )
        grand_total += q(shipping) - q(shipping_discount) + q(shipping_tax) + q(shipping_compensation)
    grand_total += q(adjustment_positive) - q(adjustment_negative)
    # Gift cards, store credit and reward points pay part of it (never more than there is); Commerce reports
    # the rest as the grand total.
    prepaid = {"gift_cards_amount": D(0), "customer_balance_amount": D(0), "reward_currency_amount": D(0)}
    if grand_total > 0:
        for name in draw(st.sets(st.sampled_from(sorted(prepaid)))):
            prepaid[name] = q(grand_total * draw(fraction) / 3)
    grand_total -= sum(prepaid.values())
    # The header compensation as Commerce reports it: items' on an order, items' and shipping's otherwise.
    header_compensation = sum((q(ln.discount_tax_compensation) for ln in lines), D(0))
    if kind != "order":
        header_compensation += q(shipping_compensation)
    if draw(st.booleans()):  # a payload whose items do not carry their compensation: only the header has it
        lines = tuple(dataclasses.replace(ln, discount_tax_compensation=D("0")) for ln in lines)
    return SalesDocument(
        kind=kind,
        entity_id="9",
        increment_id="000000009",
        created_at=datetime(2026, 6, 1, 12, tzinfo=UTC),
        currency=currency,
        grand_total=grand_total,
        lines=lines,
        customer=Customer(commerce_id="42", email="ann@example.com", group_id="1"),
        order_increment_id="000000009",
        tax_country="US",
        shipping_amount=shipping,
        shipping_discount=shipping_discount,
        shipping_tax=shipping_tax,
        shipping_discount_tax_compensation=shipping_compensation,
        discount_tax_compensation=header_compensation,
        adjustment_positive=adjustment_positive,
        adjustment_negative=adjustment_negative,
        **prepaid,
    )


connection_settings = st.builds(
    lambda discount_mode, tax_mode, freight_mode: ConnectionDefaults(
        **{
            **DEFAULTS.__dict__,
            "discount_mode": discount_mode,
            "journal_mode": "sales_journal",
            "tax_mode": tax_mode,
            "freight_mode": freight_mode,
        }
    ),
    st.sampled_from(["net", "separate"]),
    st.sampled_from(["manual", "fusion"]),
    st.sampled_from(["allocated", "header"]),
)


@settings(max_examples=400, deadline=None)
@given(document=documents(), defaults=connection_settings)
def test_plan_total_equals_the_commerce_grand_total_and_the_journal_balances(document, defaults):
    plan = resolve(document, ruleset(), defaults)

    assert plan.ok, plan.problems
    assert plan.total == document.grand_total == plan.commerce_total
    event(f"tax mode {defaults.tax_mode}, freight {plan.freight_mode}")
    _check_tax_and_freight(plan, document, defaults)

    exponent = -currency_exponent(document.currency)
    for line in plan.lines:
        assert line.amount.as_tuple().exponent == exponent
        assert line.tax_amount == 0 or line.tax_amount.as_tuple().exponent == exponent
        # Fusion multiplies quantity by unit price: that must give the line amount back.
        assert quantize(line.quantity * line.unit_selling_price, document.currency) == line.amount

    # At most one rounding line, and only within one minor unit per Commerce line (items, shipping, adjustments).
    rounding = [line for line in plan.lines if line.kind == "rounding"]
    assert len(rounding) <= 1
    event(f"rounding line: {bool(rounding)}")
    event(f"decimals: {-exponent}")
    event(f"discount tax compensation: {any(ln.discount_tax_compensation for ln in document.lines)}")
    event(f"prepaid: {bool(document.prepaid_total)}")
    if rounding:
        commerce_lines = len(document.lines) + sum(
            1
            for present in (
                document.shipping_amount or document.shipping_tax or document.shipping_discount_tax_compensation,
                document.adjustment_positive,
                document.adjustment_negative,
            )
            if present
        )
        assert abs(rounding[0].amount) <= D(1).scaleb(exponent) * commerce_lines

    receivable = [d for d in plan.distributions if d.account_class == "Receivable"]
    assert [d.amount for d in receivable] == [plan.total]
    assert sum(d.amount for d in plan.distributions if d.account_class != "Receivable") == plan.total
    assert all(d.combination for d in plan.distributions)

    assert plan.journal_balanced
    assert plan.journal_debits == plan.journal_credits
    assert all((j.entered_dr is None) != (j.entered_cr is None) for j in plan.journal_lines)
    assert all((j.entered_dr or j.entered_cr) > 0 for j in plan.journal_lines)

    # The sale keeps its full price: payments are their own lines, on the prepayment account.
    prepayments = [line for line in plan.lines if line.kind == "prepayment"]
    assert sum(line.amount for line in prepayments) == -quantize(document.prepaid_total, document.currency)
    assert all(line.amount < 0 and line.tax_amount == 0 for line in prepayments)
    prepaid_accounts = {
        d.combination for d in plan.distributions if d.line_number in {p.line_number for p in prepayments}
    }
    assert prepaid_accounts <= {"01-000-2410-0000-00"}


def _check_tax_and_freight(plan, document, defaults):
    """Tax lines carry exactly Commerce's tax (manual mode) or nothing (fusion mode); the freight is where the mode
    puts it and adds up to Commerce's shipping; the Fusion body bills what the plan says it must."""
    for line in plan.lines:
        if defaults.tax_mode == "manual":
            assert sum((t.amount for t in line.tax_lines), D(0)) == line.tax_amount
            assert all(t.tax_regime_code and t.tax_rate_code for t in line.tax_lines)
        else:
            assert line.tax_lines == ()
        assert line.freight_amount == 0 or line.kind == "item"
    expected_mode = "header" if document.kind == "creditmemo" else defaults.freight_mode
    assert plan.freight_mode == expected_mode
    if expected_mode == "header":
        assert all(line.freight_amount == 0 for line in plan.lines)
    else:
        assert plan.header_freight == 0
    freight = [d for d in plan.distributions if d.account_class == "Freight"]
    assert sum((d.amount for d in freight), D(0)) == plan.freight_total
    assert all((d.line_number is None) == (expected_mode == "header") for d in freight)
    body = credit_memo_payload(plan) if plan.is_credit_memo else invoice_payload(plan, complete=False)
    assert quantize(payload_total(body), document.currency) == billed_total(plan)
