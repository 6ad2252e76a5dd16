"""Tax on the plan's lines: each Commerce tax (an item's, or the shipping's) matched to a tax rule, which says
which Fusion tax regime, tax, status, rate and jurisdiction it is and the line's tax classification code.

In the manual tax mode every tax Commerce charged becomes a manual tax line with the mapped codes; in the fusion
mode only the line's classification code goes and Fusion computes the tax (the amounts stay on the plan: they
are what Fusion's tax is compared with). A tax no rule matches is a problem on the plan, like a missing product
rule. An untaxed line takes a rule only for its own rate (say an exempt rule for 0 %), never the default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.documents import AppliedTax, SalesDocument, SalesLine

from .data import TAX_FUSION, TaxRuleData
from .matching import Matched, match_tax
from .money import spread
from .plan import PlanTaxLine, Problems

_NO_TAX = AppliedTax()


@dataclass(frozen=True)
class LineTax:
    """What a line carries: its classification code, its manual tax lines (manual mode) and why."""

    classification: str = ""
    tax_lines: tuple[PlanTaxLine, ...] = ()
    reason: str = ""


def _describe(tax: AppliedTax, country: str) -> str:
    """ "code US-TX-*-Rate 1 ("TX State") at 8.25 % in US", or as much of it as there is."""
    parts = []
    if tax.code:
        parts.append(f"code {tax.code}")
    if tax.title and tax.title != tax.code:
        parts.append(f'("{tax.title}")')
    parts.append(f"at {tax.percent.normalize():f} %")
    if country:
        parts.append(f"in {country}")
    return " ".join(parts)


class TaxPlanner:
    """Maps the taxes of one document, collecting problems once each."""

    def __init__(
        self,
        *,
        rules: tuple[TaxRuleData, ...],
        on: date,
        document: SalesDocument,
        mode: str,
        currency: str,
        problems: Problems,
    ) -> None:
        self.rules = rules
        self.on = on
        self.country = document.tax_country
        self.applied = document.applied_taxes
        self.fusion = mode == TAX_FUSION
        self.currency = currency
        self.problems = problems

    def for_line(self, source: SalesLine, tax: Decimal, where: str) -> LineTax:
        """An item line's taxes, `tax` being its (rounded) Commerce tax."""
        return self._plan(self._breakdown(source.taxes, source.tax_percent, tax), tax, where, source="item")

    def for_shipping(self, document: SalesDocument, tax: Decimal, base: Decimal) -> LineTax:
        """The shipping's taxes: its own breakdown, else the order's single applied tax, else its rate."""
        percent = (tax * 100 / base).quantize(Decimal("0.01")) if base else Decimal(0)
        taxes = self._breakdown(document.shipping_taxes, percent, tax)
        return self._plan(taxes, tax, "The shipping", source="shipping")

    def _breakdown(self, given: tuple[AppliedTax, ...], percent: Decimal, tax: Decimal) -> list[AppliedTax]:
        """The Commerce taxes making up `tax`: the breakdown given (its amounts scaled to `tax`, which is less on
        a partial invoice), else the order's applied tax for this rate, else just the rate."""
        taxes = list(given)
        if not taxes and tax and self.applied:
            same_rate = [t for t in self.applied if t.percent == percent]
            taxes = list(self.applied) if len(self.applied) == 1 else same_rate[:1]
        if not taxes:
            return [AppliedTax(percent=percent, amount=tax)]
        weights = [t.amount for t in taxes] if any(t.amount for t in taxes) else [t.percent for t in taxes]
        amounts = spread(tax, weights, self.currency)
        return [AppliedTax(t.code, t.title, t.percent, amount) for t, amount in zip(taxes, amounts, strict=True)]

    def _plan(self, taxes: list[AppliedTax], tax: Decimal, where: str, *, source: str) -> LineTax:
        matches = [(t, self._match(t, where, taxed=bool(tax))) for t in taxes]
        found = [(t, m) for t, m in matches if m is not None]
        rules = [m.rule for _, m in found if isinstance(m.rule, TaxRuleData)]
        classification = next((r.tax_classification_code for r in rules if r.tax_classification_code), "")
        reason = "; ".join(dict.fromkeys(m.label for _, m in found))
        if not tax:
            return LineTax(classification, (), reason)
        if self.fusion:
            if found and not classification:
                self._incomplete(
                    found[0][1],
                    "a tax classification code",
                    "the fusion tax mode sends it for Fusion to compute the tax",
                )
            return LineTax(classification, (), reason)
        lines = tuple(self._tax_line(t, m, source) for t, m in found if t.amount)
        return LineTax(classification, lines, reason)

    def _match(self, tax: AppliedTax, where: str, *, taxed: bool) -> Matched | None:
        rate_known = bool(tax.percent) or not taxed
        matched = match_tax(tax, self.country, self.rules, self.on, allow_default=taxed, rate_known=rate_known)
        if matched is None and taxed:
            described = _describe(tax, self.country)
            wanted = f"tax code {tax.code}" if tax.code else f"rate {tax.percent.normalize():f}"
            self.problems.add(
                "tax_mapping_missing",
                f"{where}: no tax rule matches the Commerce tax {described} and there is no default tax rule.",
                f"Add a tax rule for {wanted} (or for its rate and country, or a default tax rule) in Mappings > "
                "Tax rules, then replay the record.",
            )
        return matched

    def _tax_line(self, tax: AppliedTax, matched: Matched, source: str) -> PlanTaxLine:
        rule = matched.rule
        assert isinstance(rule, TaxRuleData)
        if not (rule.tax_regime_code and rule.tax_rate_code):
            self._incomplete(matched, "tax regime code or tax rate code", "every manual tax line names both")
        return PlanTaxLine(
            tax_regime_code=rule.tax_regime_code,
            tax_rate_code=rule.tax_rate_code,
            amount=tax.amount,
            tax=rule.tax,
            tax_status_code=rule.tax_status_code,
            tax_jurisdiction_code=rule.tax_jurisdiction_code,
            source=source,
            reason=f"{matched.label}: Commerce {_describe(tax, self.country)}",
        )

    def _incomplete(self, matched: Matched, what: str, why: str) -> None:
        self.problems.add(
            "tax_rule_incomplete",
            f"The {matched.label} has no {what.removeprefix('a ')}: {why}.",
            f"Fill in the {what.removeprefix('a ')} of the {matched.label} in Mappings > Tax rules, then replay the "
            "record.",
        )


def inherit_tax_facts(document: SalesDocument, order: SalesDocument) -> SalesDocument:
    """An invoice's or credit memo's tax facts from its order: the order's applied taxes, the shipping's and the
    tax country, and for each line the breakdown and rate of the order line it invoices (same order item id)."""
    by_line = {line.line_id: line for line in order.lines}
    lines = []
    for line in document.lines:
        ordered = by_line.get(line.line_id)
        if ordered is not None:
            line = dataclasses.replace(
                line, taxes=line.taxes or ordered.taxes, tax_percent=line.tax_percent or ordered.tax_percent
            )
        lines.append(line)
    return dataclasses.replace(
        document,
        lines=tuple(lines),
        applied_taxes=document.applied_taxes or order.applied_taxes,
        shipping_taxes=document.shipping_taxes or order.shipping_taxes,
        tax_country=document.tax_country or order.tax_country,
    )
