"""Which rule applies: effective dates, and the customer, product and store precedence.

Match types are tried highest precedence first; within a tier the rule that took effect last wins."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypeVar

from connector.documents import AppliedTax, Customer, SalesDocument, SalesLine

from .data import CustomerRuleData, ProductRuleData, StoreRuleData, TaxRuleData

# Match types, highest precedence first.
CUSTOMER_MATCH_TYPES = ("customer_id", "email", "company", "customer_group", "default")
PRODUCT_MATCH_TYPES = ("sku", "sku_pattern", "attribute_set", "category", "default")
STORE_MATCH_TYPES = ("store", "store_code", "website", "default")
TAX_MATCH_TYPES = ("tax_code", "rate", "default")

# Short words used in reasons ("customer rule group=3 set channel=20").
MATCH_LABELS = {
    "customer_id": "customer",
    "email": "email",
    "company": "company",
    "customer_group": "group",
    "sku": "sku",
    "sku_pattern": "pattern",
    "attribute_set": "attribute set",
    "category": "category",
    "store": "store",
    "store_code": "store code",
    "website": "website",
    "tax_code": "code",
    "rate": "rate",
    "default": "default",
}

# What a document or line lacks, in words, when a rule type cannot be tried.
_DATA_WORDS = {
    "store": "store id",
    "store_code": "store code",
    "website": "website id",
    "attribute_set": "attribute set",
    "category": "category",
}


class _Dated(Protocol):
    @property
    def effective_from(self) -> date | None: ...

    @property
    def effective_to(self) -> date | None: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def rule_id(self) -> int | None: ...


_R = TypeVar("_R", bound=_Dated)


def is_effective(rule: _Dated, on: date) -> bool:
    """Enabled, and on falls within [effective_from, effective_to] (both inclusive; blank is open)."""
    if not rule.enabled:
        return False
    if rule.effective_from is not None and on < rule.effective_from:
        return False
    return not (rule.effective_to is not None and on > rule.effective_to)


def latest(candidates: Iterable[_R]) -> _R | None:
    """Among candidates of one tier, the one that took effect last (then the newest row)."""
    best: _R | None = None
    for rule in candidates:
        key = (rule.effective_from or date.min, rule.rule_id or 0)
        if best is None or key > (best.effective_from or date.min, best.rule_id or 0):
            best = rule
    return best


def _same(a: str, b: str) -> bool:
    return bool(a) and a.strip().casefold() == b.strip().casefold()


@dataclass(frozen=True)
class Matched:
    dimension: str  # customer | product | store
    match_type: str
    match_value: str
    segments: Mapping[str, str]
    rule: object
    note: str = ""

    @property
    def label(self) -> str:
        word = MATCH_LABELS.get(self.match_type, self.match_type)
        head = (
            f"{self.dimension} rule {word}"
            if self.match_type == "default"
            else (f"{self.dimension} rule {word}={self.match_value}")
        )
        return f"{head} ({self.note})" if self.note else head


def match_customer(customer: Customer, rules: Iterable[CustomerRuleData], on: date) -> Matched | None:
    live = [r for r in rules if is_effective(r, on)]
    customer_id = "" if customer.is_guest else customer.commerce_id
    tiers: tuple[tuple[str, str], ...] = (
        ("customer_id", customer_id),
        ("email", customer.email),
        ("company", customer.company),
        ("customer_group", customer.group_id),
    )
    for match_type, value in tiers:
        if not value:
            continue
        rule = latest(r for r in live if r.match_type == match_type and _same(r.match_value, value))
        if rule is not None:
            return Matched("customer", match_type, rule.match_value, rule.segments, rule)
    rule = latest(r for r in live if r.match_type == "default")
    return Matched("customer", "default", "", rule.segments, rule) if rule is not None else None


def _literal_chars(pattern: str) -> int:
    return sum(1 for ch in pattern if ch not in "*?[]")


def match_product(line: SalesLine, rules: Iterable[ProductRuleData], on: date) -> Matched | None:
    live = [r for r in rules if is_effective(r, on)]

    for sku, note in ((line.sku, ""), (line.parent_sku, f"parent of {line.sku}")):
        if not sku:
            continue
        rule = latest(r for r in live if r.match_type == "sku" and _same(r.match_value, sku))
        if rule is not None:
            return Matched("product", "sku", rule.match_value, rule.segments, rule, note)

    # The most specific pattern wins: the one with the most literal characters ("LAP-15*" beats "LAP-*").
    for sku, note in ((line.sku, ""), (line.parent_sku, f"parent of {line.sku}")):
        if not sku:
            continue
        patterns = [
            r
            for r in live
            if r.match_type == "sku_pattern" and fnmatch.fnmatchcase(sku.casefold(), r.match_value.casefold())
        ]
        if patterns:
            top = max(_literal_chars(r.match_value) for r in patterns)
            tied = sorted({r.match_value for r in patterns if _literal_chars(r.match_value) == top})
            rule = latest(r for r in patterns if r.match_value == tied[0])
            assert rule is not None
            return Matched("product", "sku_pattern", rule.match_value, rule.segments, rule, note)

    if line.attribute_set_id:
        rule = latest(r for r in live if r.match_type == "attribute_set" and r.match_value == line.attribute_set_id)
        if rule is not None:
            return Matched("product", "attribute_set", rule.match_value, rule.segments, rule)

    # A product sits in several categories: the first of the line's categories that has a rule decides.
    for category_id in line.category_ids:
        rule = latest(r for r in live if r.match_type == "category" and r.match_value == str(category_id))
        if rule is not None:
            return Matched("product", "category", rule.match_value, rule.segments, rule)

    rule = latest(r for r in live if r.match_type == "default")
    return Matched("product", "default", "", rule.segments, rule) if rule is not None else None


def match_store(document: SalesDocument, rules: Iterable[StoreRuleData], on: date) -> Matched | None:
    live = [r for r in rules if is_effective(r, on)]
    tiers = (("store", document.store_id), ("store_code", document.store_code), ("website", document.website_id))
    for match_type, value in tiers:
        if not value:
            continue
        rule = latest(r for r in live if r.match_type == match_type and _same(r.match_value, str(value)))
        if rule is not None:
            return Matched("store", match_type, rule.match_value, rule.segments, rule)
    rule = latest(r for r in live if r.match_type == "default")
    return Matched("store", "default", "", rule.segments, rule) if rule is not None else None


def parse_rate(text: str) -> Decimal | None:
    """ "8.25", "8.25 %" or "20" as a Decimal; None when it is not a number."""
    try:
        rate = Decimal(text.strip().rstrip("%").strip())
    except (InvalidOperation, ValueError):
        return None
    return rate if rate.is_finite() else None


def match_tax(
    tax: AppliedTax,
    country: str,
    rules: Iterable[TaxRuleData],
    on: date,
    *,
    allow_default: bool = True,
    rate_known: bool = True,
) -> Matched | None:
    """The tax rule for one Commerce tax: by its code or title, then by its rate in the tax country (a rule for
    that country before one for any country), then the default (unless `allow_default` is off: an untaxed line
    takes a rule only for its own rate, never the default meant for what Commerce taxed). A tax whose rate the
    document does not give (`rate_known` off) is never taken for a 0 % tax."""
    live = [r for r in rules if is_effective(r, on)]
    for value in (tax.code, tax.title):
        if not value:
            continue
        rule = latest(r for r in live if r.match_type == "tax_code" and _same(r.match_value, value))
        if rule is not None:
            return Matched("tax", "tax_code", rule.match_value, {}, rule)
    rates = [r for r in live if rate_known and r.match_type == "rate" and parse_rate(r.match_value) == tax.percent]
    for wanted in (country, ""):
        rule = latest(r for r in rates if r.country.strip().casefold() == wanted.strip().casefold())
        if rule is not None:
            return Matched("tax", "rate", rule.match_value, {}, rule, rule.country)
    if not allow_default:
        return None
    rule = latest(r for r in live if r.match_type == "default")
    return Matched("tax", "default", "", {}, rule) if rule is not None else None


def untested_match_types(
    matched: Matched | None, precedence: Sequence[str], values: Mapping[str, object], live_types: set[str]
) -> list[str]:
    """The match types ranked above the one that matched (all of them, when only a default or nothing did) that
    have an effective rule but nothing in the document to test it against: a rule of that type might have won,
    so the match cannot be trusted. Only the types in `values` can lack data (a line always has its SKU)."""
    stop = precedence.index(matched.match_type) if matched is not None else len(precedence)
    return [t for t in precedence[:stop] if t in values and not values[t] and t in live_types]


def data_words(match_types: Iterable[str]) -> str:
    """What a document lacks for these match types, in words ("store code or website id")."""
    return " or ".join(_DATA_WORDS[t] for t in match_types)


def label_words(match_types: Iterable[str]) -> str:
    """These match types in the words of the reasons ("store code or website")."""
    return " or ".join(MATCH_LABELS[t] for t in match_types)
