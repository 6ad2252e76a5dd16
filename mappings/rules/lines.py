"""The plan's lines, numbered from 1 in the order they are added, each with the credit it posts (revenue,
freight or tax): items with their taxes and discounts, the shipping (allocated over the item lines or at the
header, with its tax on the last item line), discount tax compensation the items do not carry, credit memo
adjustments, payments taken inside Commerce, and the rounding line."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import NamedTuple

from connector.documents import SalesDocument, SalesLine, quantize

from .accounts import Account, AccountBuilder
from .data import FREIGHT_HEADER
from .matching import Matched
from .money import compensation_note, price_line, spread
from .plan import (
    DESCRIPTION_MAX,
    FREIGHT,
    LINE_ADJUSTMENT,
    LINE_DISCOUNT,
    LINE_FREIGHT,
    LINE_ITEM,
    LINE_PREPAYMENT,
    LINE_ROUNDING,
    REVENUE,
    TAX,
    PlanLine,
    Problems,
    cut,
)
from .taxes import LineTax, TaxPlanner

# Payments taken inside Commerce (Adobe Commerce gift cards, store credit, reward points), which Commerce takes
# off the grand total: SalesDocument field -> the plan line's description.
PREPAYMENTS = (
    ("gift_cards_amount", "Gift card"),
    ("customer_balance_amount", "Store credit"),
    ("reward_currency_amount", "Reward points"),
)

# The account of every posting when Fusion's AutoAccounting builds the distributions and there is no journal.
_NO_ACCOUNT = Account("", (), "AutoAccounting decides")


class Posting(NamedTuple):
    """One credit of the sale: a line's revenue, freight or tax on its account (header freight has no line)."""

    account_class: str  # Revenue | Freight | Tax
    line_number: int | None
    amount: Decimal
    account: Account
    label: str = ""  # what the journal line says, when not the line's description


class PlanLines:
    """The lines of one document's plan as they are added, and their postings. With `accounts` None no account
    is built (AutoAccounting decides, and there is no sales journal)."""

    def __init__(
        self,
        *,
        currency: str,
        separate_discounts: bool,
        accounts: AccountBuilder | None,
        taxes: TaxPlanner,
        freight_mode: str,
        problems: Problems,
    ) -> None:
        self.currency = currency
        self.separate_discounts = separate_discounts
        self.accounts = accounts
        self.taxes = taxes
        self.freight_mode = freight_mode
        self.problems = problems
        self.lines: list[PlanLine] = []
        self.postings: list[Posting] = []
        self.header_freight = Decimal("0")

    @property
    def next_number(self) -> int:
        return len(self.lines) + 1

    @property
    def total(self) -> Decimal:
        lines = sum((line.amount + line.freight_amount + line.tax_amount for line in self.lines), Decimal("0"))
        return lines + self.header_freight

    def q(self, amount: Decimal) -> Decimal:
        """amount, rounded to the currency's minor unit."""
        return quantize(Decimal(amount), self.currency)

    def account(self, template: str, product: Matched | None = None, line_number: int | None = None) -> Account:
        if self.accounts is None:
            return _NO_ACCOUNT
        return self.accounts.build(template, product=product, line_number=line_number)

    def skips(self, source: SalesLine) -> bool:
        """A line with nothing on it (no quantity, no money) is left out."""
        amounts = (source.row_total, source.discount, source.tax, source.discount_tax_compensation)
        return source.qty == 0 and not any(self.q(amount) for amount in amounts)

    def add_item(self, source: SalesLine, product: Matched | None) -> None:
        """The item at its price (less its discount, unless discounts go on lines of their own), its tax, and
        its discount line."""
        gross, discount, tax = self.q(source.row_total), self.q(source.discount), self.q(source.tax)
        # With tax-inclusive prices a discount carries tax, which Commerce gives back as the discount tax
        # compensation (row_total - discount + tax + compensation is the line's part of the grand total): the
        # discount off the net price is what is left.
        compensation = self.q(source.discount_tax_compensation)
        net_discount = discount - compensation
        amount = gross if self.separate_discounts else gross - net_discount
        number = self.next_number
        quantity, unit_price, qty_note = price_line(amount, source.qty, self.currency)
        product_rule = product.rule if product is not None else None
        line_tax = self.taxes.for_line(source, tax, f"Line {number}")
        self.lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_ITEM,
                description=cut(f"{source.sku} {source.name}".strip() + qty_note, DESCRIPTION_MAX),
                quantity=quantity,
                unit_selling_price=unit_price,
                amount=amount,
                tax_amount=tax,
                item_number=getattr(product_rule, "item_number", ""),
                memo_line=getattr(product_rule, "memo_line", ""),
                sku=source.sku,
                source_line_id=source.line_id,
                tax_percent=source.tax_percent,
                reason=product.label if product is not None else "no product rule",
                tax_classification_code=line_tax.classification,
                tax_lines=line_tax.tax_lines,
                tax_reason=line_tax.reason,
            )
        )
        self._post(REVENUE, number, amount, "revenue", product)
        if tax:
            self._post(TAX, number, tax, "tax")
        if self.separate_discounts and net_discount:
            discount_number = self._add(
                LINE_DISCOUNT,
                cut(f"Discount {source.sku}", DESCRIPTION_MAX),
                -net_discount,
                f"discount on line {number}" + compensation_note(discount, compensation),
                sku=source.sku,
                source_line_id=source.line_id,
            )
            self._post(REVENUE, discount_number, -net_discount, "discount", product)

    def add_shipping(self, document: SalesDocument) -> None:
        """The shipping on the freight account: allocated over the item lines (the cents to the last one) or at
        the header, as the freight mode says; its tax on the last item line; its discount line when discounts go
        separately."""
        shipping, discount, tax, compensation = (
            self.q(document.shipping_amount),
            self.q(document.shipping_discount),
            self.q(document.shipping_tax),
            self.q(document.shipping_discount_tax_compensation),
        )
        if not (shipping or discount or tax or compensation):
            return
        net_discount = discount - compensation
        freight = shipping if self.separate_discounts else shipping - net_discount
        shipping_tax = self.taxes.for_shipping(document, tax, shipping - net_discount)
        items = [index for index, line in enumerate(self.lines) if line.kind == LINE_ITEM]
        if items:
            self._place_freight(freight, items)
            self._place_shipping_tax(tax, shipping_tax, items[-1])
        else:
            self._freight_line(document, freight, tax, shipping_tax)
        if self.separate_discounts and net_discount:
            reason = "shipping discount" + compensation_note(discount, compensation)
            number = self._add(LINE_DISCOUNT, "Shipping discount", -net_discount, reason)
            self._post(REVENUE, number, -net_discount, "discount")

    def _place_freight(self, freight: Decimal, items: list[int]) -> None:
        if not freight:
            return
        if self.freight_mode == FREIGHT_HEADER:
            self.header_freight += freight
            self._post(FREIGHT, None, freight, "freight", label="Shipping")
            return
        shares = spread(freight, [self.lines[index].amount for index in items], self.currency)
        for index, share in zip(items, shares, strict=True):
            if share:
                line = self.lines[index]
                self.lines[index] = dataclasses.replace(line, freight_amount=line.freight_amount + share)
                self._post(FREIGHT, line.line_number, share, "freight", label=f"Shipping on line {line.line_number}")

    def _place_shipping_tax(self, tax: Decimal, shipping_tax: LineTax, index: int) -> None:
        if not tax:
            return
        line = self.lines[index]
        reason = "; ".join(r for r in (line.tax_reason, f"shipping tax {tax}: {shipping_tax.reason}") if r)
        self.lines[index] = dataclasses.replace(
            line,
            tax_amount=line.tax_amount + tax,
            tax_lines=line.tax_lines + shipping_tax.tax_lines,
            tax_classification_code=line.tax_classification_code or shipping_tax.classification,
            tax_reason=reason,
        )
        self._post(TAX, line.line_number, tax, "tax", label="Shipping tax")

    def _freight_line(self, document: SalesDocument, freight: Decimal, tax: Decimal, shipping_tax: LineTax) -> None:
        """No item line to carry the shipping (a credit memo refunding only the shipping): a line of its own, as
        an on-account credit memo line is. Oracle documents no such line on an invoice."""
        if document.kind != "creditmemo":
            self.problems.add(
                "freight_unplaced",
                f"The document has shipping ({freight}) or shipping tax ({tax}) but no item line to carry it.",
                "Check the Commerce document's items; post this document by hand, then mark the record ignored.",
            )
        number = self._add(LINE_FREIGHT, "Shipping", freight, "shipping", tax_amount=tax)
        self.lines[-1] = dataclasses.replace(
            self.lines[-1],
            tax_lines=shipping_tax.tax_lines,
            tax_classification_code=shipping_tax.classification,
            tax_reason=shipping_tax.reason,
        )
        self._post(FREIGHT, number, freight, "freight")
        if tax:
            self._post(TAX, number, tax, "tax")

    def add_unplaced_compensation(self, document: SalesDocument) -> None:
        """The lines carry their compensation. A payload whose items do not is caught up from the header, which
        counts the items' compensation on an order and the items' and shipping's on an invoice or credit memo."""
        if not document.discount_tax_compensation or any(ln.discount_tax_compensation for ln in document.lines):
            return
        unplaced = self.q(document.discount_tax_compensation)
        if document.kind != "order":
            unplaced -= self.q(document.shipping_discount_tax_compensation)
        if not unplaced:
            return
        reason = f"discount tax compensation {unplaced} from the Commerce totals (its items carry none)"
        number = self._add(LINE_DISCOUNT, "Discount tax compensation", unplaced, reason)
        self._post(REVENUE, number, unplaced, "discount" if self.separate_discounts else "revenue")

    def add_adjustments(self, document: SalesDocument) -> None:
        """A credit memo's refund adjustment and adjustment fee, on the revenue account."""
        for text, value in (
            ("Refund adjustment", self.q(document.adjustment_positive)),
            ("Adjustment fee", -self.q(document.adjustment_negative)),
        ):
            if value:
                number = self._add(LINE_ADJUSTMENT, text, value, "credit memo adjustment")
                self._post(REVENUE, number, value, "revenue")

    def add_prepayments(self, document: SalesDocument) -> None:
        """Gift cards, store credit and reward points are payments, not price changes: the sale keeps its full
        price and these lines (on the prepayment account) bring the document down to the grand total Commerce
        reports, which is what the customer still owes (or, on a credit memo, what is refunded by other means)."""
        for field_name, text in PREPAYMENTS:
            paid = self.q(getattr(document, field_name))
            if not paid:
                continue
            if document.kind == "creditmemo":
                why = f"{paid} {self.currency} refunded to the {text.lower()} in Commerce, not part of its grand total"
            else:
                why = f"{paid} {self.currency} paid by {text.lower()} in Commerce, not part of its grand total"
            number = self._add(LINE_PREPAYMENT, text, -paid, why)
            self._post(REVENUE, number, -paid, "prepayment")

    def add_rounding(self, residue: Decimal, reason: str) -> None:
        """The difference between Commerce's rounding and ours, on the rounding account."""
        number = self._add(LINE_ROUNDING, "Rounding", residue, reason)
        self._post(REVENUE, number, residue, "rounding")

    def _add(
        self,
        kind: str,
        description: str,
        amount: Decimal,
        reason: str,
        *,
        tax_amount: Decimal = Decimal("0"),
        sku: str = "",
        source_line_id: str = "",
    ) -> int:
        """Add a line of quantity 1 at `amount`; its number."""
        number = self.next_number
        self.lines.append(
            PlanLine(
                line_number=number,
                kind=kind,
                description=description,
                quantity=Decimal("1"),
                unit_selling_price=amount,
                amount=amount,
                tax_amount=tax_amount,
                sku=sku,
                source_line_id=source_line_id,
                reason=reason,
            )
        )
        return number

    def _post(
        self,
        account_class: str,
        line_number: int | None,
        amount: Decimal,
        template: str,
        product: Matched | None = None,
        *,
        label: str = "",
    ) -> None:
        account = self.account(template, product, line_number)
        self.postings.append(Posting(account_class, line_number, amount, account, label))
