"""The GL resolver: a SalesDocument plus snapshots of the mapping rules in, a PostingPlan out.

Pure on purpose: no database, no I/O, no Django. Everything it needs arrives as plain frozen dataclasses, so
every precedence, overlay and rounding decision is tested exhaustively without a database, and the plan says
for every account which rule set which segment.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.documents import Customer, SalesDocument, SalesLine, currency_exponent, quantize

# Fusion's AccountClass words on receivablesInvoiceDistributions (reference/fusion.md §4).
REVENUE, RECEIVABLE, FREIGHT, TAX = "Revenue", "Receivable", "Freight", "Tax"

# Account template classes a connection configures.
TEMPLATE_CLASSES = ("revenue", "receivable", "freight", "tax", "discount", "rounding", "clearing", "prepayment")
# What a template class is for, where the name alone does not say it (used in the "template missing" fix).
TEMPLATE_PURPOSES = {
    "prepayment": "the gift card, store credit and reward points liability or clearing account",
}

# Match types, highest precedence first. Within a tier the most recent effective_from wins.
CUSTOMER_MATCH_TYPES = ("customer_id", "email", "company", "customer_group", "default")
PRODUCT_MATCH_TYPES = ("sku", "sku_pattern", "attribute_set", "category", "default")
STORE_MATCH_TYPES = ("store", "store_code", "website", "default")

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
    "default": "default",
}

WINNERS = ("customer", "product", "template")
DEFAULT_WINNER = "product"

LINE_ITEM, LINE_FREIGHT, LINE_DISCOUNT, LINE_ADJUSTMENT, LINE_PREPAYMENT, LINE_ROUNDING = (
    "item",
    "freight",
    "discount",
    "adjustment",
    "prepayment",
    "rounding",
)

# Payments taken inside Commerce (Adobe Commerce gift cards, store credit, reward points), which Commerce takes
# off the grand total: SalesDocument field -> the plan line's description.
PREPAYMENTS = (
    ("gift_cards_amount", "Gift card"),
    ("customer_balance_amount", "Store credit"),
    ("reward_currency_amount", "Reward points"),
)

CURRENCY_KEEP, CURRENCY_CONVERT = "order", "convert"
USER_RATE_TYPE = "User"

# Fusion column limits the plan respects so the posting code never has to cut.
DESCRIPTION_MAX = 240
COMMENTS_MAX = 240
UNIT_PRICE_PLACES = 6
RATE_PLACES = 10


# --------------------------------------------------------------------------------------------------------------
# Snapshots of the rules (built by mappings.services from the database, or by hand in tests)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRuleData:
    match_type: str
    match_value: str
    bill_to_customer_number: str
    bill_to_site: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class ProductRuleData:
    match_type: str
    match_value: str
    item_number: str = ""
    memo_line: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class StoreRuleData:
    match_type: str
    match_value: str
    business_unit: str = ""
    transaction_source: str = ""
    transaction_type: str = ""
    credit_memo_transaction_type: str = ""
    currency_mode: str = CURRENCY_KEEP
    conversion_rate_type: str = ""
    ledger_currency: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class AccountTemplateData:
    account_class: str
    combination: str = ""  # concatenated, e.g. 01-000-4110-0000-000; or:
    segments: Mapping[str, str] = field(default_factory=dict)  # segment name -> value
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class SegmentLayoutData:
    segment_names: tuple[str, ...]
    delimiter: str = "-"
    winners: Mapping[str, str] = field(default_factory=dict)  # segment -> customer | product | template
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class RuleSet:
    customers: tuple[CustomerRuleData, ...] = ()
    products: tuple[ProductRuleData, ...] = ()
    stores: tuple[StoreRuleData, ...] = ()
    templates: tuple[AccountTemplateData, ...] = ()
    layouts: tuple[SegmentLayoutData, ...] = ()


@dataclass(frozen=True)
class ConnectionDefaults:
    """The connection's posting defaults, as the resolver needs them."""

    slug: str = ""
    business_unit: str = ""
    transaction_source: str = ""
    transaction_type: str = "Invoice"
    credit_memo_transaction_type: str = "Credit Memo"
    payment_terms: str = "Immediate"
    ledger_currency: str = "USD"
    time_zone: str = "UTC"
    transaction_number_prefix: str = ""
    discount_mode: str = "net"  # net | separate
    distributions: str = "manual"  # manual | auto (AutoAccounting)
    journal_mode: str = "none"  # sales_journal | none
    invoice_event: str = "order"  # order | invoice


# --------------------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    rate_type: str
    conversion_date: date
    rate: Decimal | None = None  # only for the User rate type: invoice currency -> ledger currency


@dataclass(frozen=True)
class PlanHeader:
    business_unit: str
    transaction_source: str
    transaction_type: str
    transaction_number: str
    transaction_date: date
    accounting_date: date
    bill_to_customer_number: str
    bill_to_site: str
    payment_terms: str
    currency: str
    conversion: Conversion | None
    purchase_order: str
    cross_reference: str
    comments: str
    original_invoice_number: str = ""  # credit memos: the AR invoice being credited
    bill_to_reason: str = ""
    store_reason: str = ""


@dataclass(frozen=True)
class PlanLine:
    line_number: int
    kind: str  # item | freight | discount | adjustment | prepayment | rounding
    description: str
    quantity: Decimal
    unit_selling_price: Decimal
    amount: Decimal
    tax_amount: Decimal = Decimal("0")
    item_number: str = ""
    memo_line: str = ""
    sku: str = ""
    source_line_id: str = ""
    tax_percent: Decimal = Decimal("0")
    reason: str = ""


@dataclass(frozen=True)
class Distribution:
    account_class: str  # Revenue | Receivable | Freight | Tax
    line_number: int | None
    combination: str
    amount: Decimal
    reason: str
    segment_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class JournalLine:
    combination: str
    entered_dr: Decimal | None
    entered_cr: Decimal | None
    description: str
    reason: str
    segment_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    resolution: str
    line_number: int | None = None

    @property
    def text(self) -> str:
        return f"{self.message} Resolution: {self.resolution}"


@dataclass(frozen=True)
class PostingPlan:
    connection: str
    document_kind: str  # order | invoice | creditmemo
    document_number: str
    entity_id: str
    currency: str
    commerce_total: Decimal
    header: PlanHeader
    lines: tuple[PlanLine, ...]
    distributions: tuple[Distribution, ...]
    journal_lines: tuple[JournalLine, ...]
    problems: tuple[Problem, ...]
    rules_date: date  # the date whose effective rules were used
    distributions_mode: str = "manual"
    journal_mode: str = "none"
    segment_names: tuple[str, ...] = ()
    delimiter: str = "-"

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def is_credit_memo(self) -> bool:
        return self.document_kind == "creditmemo"

    @property
    def lines_total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.lines_total + self.tax_total

    @property
    def journal_debits(self) -> Decimal:
        return sum((line.entered_dr or Decimal("0") for line in self.journal_lines), Decimal("0"))

    @property
    def journal_credits(self) -> Decimal:
        return sum((line.entered_cr or Decimal("0") for line in self.journal_lines), Decimal("0"))

    @property
    def journal_balanced(self) -> bool:
        return self.journal_debits == self.journal_credits

    def problem_reason(self) -> str:
        """All problems in one sentence per problem, for the record's last_error."""
        return " ".join(problem.message for problem in self.problems)

    def problem_hint(self) -> str:
        """The fixes, starting with "Resolution:" as record_park expects."""
        fixes: list[str] = []
        for problem in self.problems:
            if problem.resolution not in fixes:
                fixes.append(problem.resolution)
        return "Resolution: " + " ".join(fixes) if fixes else ""


# --------------------------------------------------------------------------------------------------------------
# Segment values as text ("account=4110; channel=20"): the admin and the CSV/XLSX files use this form
# --------------------------------------------------------------------------------------------------------------


def parse_segment_values(text: str) -> dict[str, str]:
    """ "account=4110; channel=20" -> {"account": "4110", "channel": "20"}. Raises ValueError on bad input."""
    values: dict[str, str] = {}
    for chunk in (text or "").replace("\n", ";").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValueError(f"{chunk!r} is not name=value (write segment values as account=4110; channel=20)")
        if name in values:
            raise ValueError(f"segment {name!r} is given twice")
        if not value:
            raise ValueError(f"segment {name!r} has no value")
        values[name] = value
    return values


def format_segment_values(values: Mapping[str, str], order: Sequence[str] = ()) -> str:
    """The inverse of parse_segment_values: layout order first, then the rest by name."""
    names = [n for n in order if n in values] + sorted(n for n in values if n not in order)
    return "; ".join(f"{name}={values[name]}" for name in names)


# --------------------------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------------------------


class _Dated(Protocol):
    @property
    def effective_from(self) -> date | None: ...

    @property
    def effective_to(self) -> date | None: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def rule_id(self) -> int | None: ...


R = TypeVar("R", bound=_Dated)


def is_effective(rule: _Dated, on: date) -> bool:
    """Enabled, and on falls within [effective_from, effective_to] (both inclusive; blank is open)."""
    if not rule.enabled:
        return False
    if rule.effective_from is not None and on < rule.effective_from:
        return False
    return not (rule.effective_to is not None and on > rule.effective_to)


def _latest(candidates: Iterable[R]) -> R | None:
    """Among candidates of one tier, the one that took effect last (then the newest row)."""
    best: R | None = None
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
        rule = _latest(r for r in live if r.match_type == match_type and _same(r.match_value, value))
        if rule is not None:
            return Matched("customer", match_type, rule.match_value, rule.segments, rule)
    rule = _latest(r for r in live if r.match_type == "default")
    return Matched("customer", "default", "", rule.segments, rule) if rule is not None else None


def _literal_chars(pattern: str) -> int:
    return sum(1 for ch in pattern if ch not in "*?[]")


def match_product(line: SalesLine, rules: Iterable[ProductRuleData], on: date) -> Matched | None:
    live = [r for r in rules if is_effective(r, on)]

    for sku, note in ((line.sku, ""), (line.parent_sku, f"parent of {line.sku}")):
        if not sku:
            continue
        rule = _latest(r for r in live if r.match_type == "sku" and _same(r.match_value, sku))
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
            rule = _latest(r for r in patterns if r.match_value == tied[0])
            assert rule is not None
            return Matched("product", "sku_pattern", rule.match_value, rule.segments, rule, note)

    if line.attribute_set_id:
        rule = _latest(r for r in live if r.match_type == "attribute_set" and r.match_value == line.attribute_set_id)
        if rule is not None:
            return Matched("product", "attribute_set", rule.match_value, rule.segments, rule)

    # A product sits in several categories: the first of the line's categories that has a rule decides.
    for category_id in line.category_ids:
        rule = _latest(r for r in live if r.match_type == "category" and r.match_value == str(category_id))
        if rule is not None:
            return Matched("product", "category", rule.match_value, rule.segments, rule)

    rule = _latest(r for r in live if r.match_type == "default")
    return Matched("product", "default", "", rule.segments, rule) if rule is not None else None


def match_store(document: SalesDocument, rules: Iterable[StoreRuleData], on: date) -> Matched | None:
    live = [r for r in rules if is_effective(r, on)]
    tiers = (("store", document.store_id), ("store_code", document.store_code), ("website", document.website_id))
    for match_type, value in tiers:
        if not value:
            continue
        rule = _latest(r for r in live if r.match_type == match_type and _same(r.match_value, str(value)))
        if rule is not None:
            return Matched("store", match_type, rule.match_value, rule.segments, rule)
    rule = _latest(r for r in live if r.match_type == "default")
    return Matched("store", "default", "", rule.segments, rule) if rule is not None else None


def untested_match_types(
    matched: Matched | None, precedence: Sequence[str], values: Mapping[str, object], live_types: set[str]
) -> list[str]:
    """The match types ranked above the one that matched (all of them, when only a default or nothing did) that
    have an effective rule but nothing in the document to test it against: a rule of that type might have won,
    so the match cannot be trusted. Only the types in `values` can lack data (a line always has its SKU)."""
    stop = precedence.index(matched.match_type) if matched is not None else len(precedence)
    return [t for t in precedence[:stop] if t in values and not values[t] and t in live_types]


def _words(match_types: Iterable[str], labels: Mapping[str, str]) -> str:
    return " or ".join(labels[t] for t in match_types)


# What a document or line lacks, in words, when a rule type cannot be tried.
_DATA_WORDS = {
    "store": "store id",
    "store_code": "store code",
    "website": "website id",
    "attribute_set": "attribute set",
    "category": "category",
}


# --------------------------------------------------------------------------------------------------------------
# Accounts: template, overlaid by the store's legal-entity values, then by the customer and product dimensions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    combination: str
    segment_values: tuple[str, ...]
    reason: str


class _Accounts:
    """Builds combinations for one document, collecting problems once each."""

    def __init__(
        self,
        *,
        rules: RuleSet,
        on: date,
        store: Matched | None,
        customer: Matched | None,
        problems: _Problems,
    ) -> None:
        self.on = on
        self.store = store
        self.customer = customer
        self.problems = problems
        layouts = [layout for layout in rules.layouts if is_effective(layout, on)]
        self.layout = _latest(layouts)
        self.templates = {
            account_class: _latest(
                t for t in rules.templates if t.account_class == account_class and is_effective(t, on)
            )
            for account_class in TEMPLATE_CLASSES
        }
        if self.layout is None:
            problems.add(
                "segment_layout_missing",
                f"No segment layout is effective on {on.isoformat()}, so no account combination can be built.",
                "Add the segment layout (segment names in chart-of-accounts order and the delimiter) in "
                "Mappings > Segment layouts, then replay the record.",
            )

    def build(self, account_class: str, *, product: Matched | None = None, line_number: int | None = None) -> Account:
        layout = self.layout
        if layout is None:
            return Account("", (), "no segment layout")
        template = self.templates.get(account_class)
        if template is None:
            purpose = TEMPLATE_PURPOSES.get(account_class)
            self.problems.add(
                "template_missing",
                f"No {account_class} account template is effective on {self.on.isoformat()}.",
                f"Add the {account_class} account template (a full account combination"
                + (f": {purpose}" if purpose else "")
                + ") in Mappings > Account templates, then replay the record.",
            )
            return Account("", (), f"no {account_class} template")

        names = layout.segment_names
        base: dict[str, str] = {}
        if template.segments:
            base = {name: str(template.segments.get(name, "")) for name in names}
        else:
            parts = template.combination.split(layout.delimiter) if template.combination else []
            if len(parts) != len(names):
                self.problems.add(
                    "template_invalid",
                    f"The {account_class} account template {template.combination!r} has {len(parts)} segments; "
                    f"the layout has {len(names)} ({', '.join(names)}).",
                    f"Correct the {account_class} template so it has one value per segment, separated by "
                    f"{layout.delimiter!r}, then replay the record.",
                )
                return Account("", (), f"{account_class} template does not fit the layout")
            base = dict(zip(names, parts, strict=True))
        source = {name: "template" for name in names if base.get(name)}

        if self.store is not None:
            for name in names:
                value = self.store.segments.get(name)
                if value:
                    base[name], source[name] = str(value), "store"

        customer_values = self.customer.segments if self.customer is not None else {}
        product_values = product.segments if product is not None else {}
        lost: list[str] = []
        for name in names:
            c_value, p_value = customer_values.get(name), product_values.get(name)
            if not c_value and not p_value:
                continue
            winner = layout.winners.get(name, DEFAULT_WINNER)
            if winner == "template":
                locked = [dim for dim, v in (("customer", c_value), ("product", p_value)) if v]
                lost.append(f"{'/'.join(locked)} value for {name} ignored: the {name} segment follows the template")
                continue
            if c_value and p_value:
                if winner == "customer":
                    base[name], source[name] = str(c_value), "customer"
                    lost.append(f"product wanted {name}={p_value}, customer wins {name}")
                else:
                    base[name], source[name] = str(p_value), "product"
                    lost.append(f"customer wanted {name}={c_value}, product wins {name}")
            elif c_value:
                base[name], source[name] = str(c_value), "customer"
            else:
                base[name], source[name] = str(p_value), "product"

        missing = [name for name in names if not base.get(name)]
        if missing:
            where = f" (line {line_number})" if line_number else ""
            self.problems.add(
                "segment_missing",
                f"The {account_class} account{where} has no value for segment {', '.join(missing)}: neither the "
                "template nor a rule sets it.",
                f"Give the {account_class} template a value for {', '.join(missing)} (or set it in a customer, "
                "product or store rule), then replay the record.",
                line_number=line_number,
            )
        bad = [name for name in names if layout.delimiter and layout.delimiter in base.get(name, "")]
        if bad:
            self.problems.add(
                "segment_invalid",
                f"Segment value for {', '.join(bad)} contains the delimiter {layout.delimiter!r}.",
                "Correct the segment value in the rule or template, then replay the record.",
            )
        values = tuple(base.get(name, "") for name in names)
        combination = layout.delimiter.join(values) if not missing else ""

        parts_text: list[str] = []
        for dim, matched in (("product", product), ("customer", self.customer), ("store", self.store)):
            set_here = [f"{name}={base[name]}" for name in names if source.get(name) == dim]
            if set_here and matched is not None:
                parts_text.append(f"{matched.label} set {', '.join(set_here)}")
        if any(source.get(name) == "template" for name in names):
            parts_text.append(f"template {account_class} for the rest" if parts_text else f"template {account_class}")
        parts_text.extend(lost)
        return Account(combination, values, "; ".join(parts_text))


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, code: str, message: str, resolution: str, line_number: int | None = None) -> None:
        if any(p.code == code and p.message == message for p in self.items):
            return
        self.items.append(Problem(code, message, resolution, line_number))


# --------------------------------------------------------------------------------------------------------------
# Money helpers
# --------------------------------------------------------------------------------------------------------------


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


def _local_date(document: SalesDocument, time_zone: str) -> date:
    created = document.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return created.astimezone(zone).date()


def _compensation_note(discount: Decimal, compensation: Decimal) -> str:
    return f" ({discount} less {compensation} discount tax compensation)" if compensation else ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------------------------------------------


def resolve(
    document: SalesDocument,
    rules: RuleSet,
    defaults: ConnectionDefaults,
    *,
    original_invoice_number: str = "",
) -> PostingPlan:
    """Resolve one Commerce document into a PostingPlan. Never raises for missing mappings: they are problems
    on the plan, each with a reason and a resolution, so the record can be parked with both."""
    currency = document.currency.upper()

    def q(amount: Decimal) -> Decimal:
        return quantize(Decimal(amount), currency)

    on = _local_date(document, defaults.time_zone)
    problems = _Problems()
    separate_discounts = defaults.discount_mode == "separate"
    manual = defaults.distributions != "auto"
    journal = defaults.journal_mode == "sales_journal"
    needs_accounts = manual or journal

    store = match_store(document, rules.stores, on)
    store_gaps = untested_match_types(
        store,
        STORE_MATCH_TYPES,
        {"store": document.store_id, "store_code": document.store_code, "website": document.website_id},
        {r.match_type for r in rules.stores if is_effective(r, on)},
    )
    if store_gaps:
        problems.add(
            "store_data_missing",
            f"The document (store {document.store_id or 'unknown'}) has no {_words(store_gaps, _DATA_WORDS)}, so "
            f"the store rules by {_words(store_gaps, MATCH_LABELS)} could not be tried (it would have used "
            f"{store.label if store is not None else 'the connection defaults'}).",
            "Check that the Commerce document carries its store id and that Commerce's store views (GET "
            "/V1/store/storeViews) list it with its code and website, or add a store rule by store id for it in "
            "Mappings > Store rules, then replay the record.",
        )
    customer = match_customer(document.customer, rules.customers, on)
    header = _header(document, defaults, on, store, customer, problems, original_invoice_number=original_invoice_number)
    accounts = (
        _Accounts(rules=rules, on=on, store=store, customer=customer, problems=problems) if needs_accounts else None
    )

    lines: list[PlanLine] = []
    # (account_class, line_number, amount, Account) for every credit of the sale: revenue, freight and tax.
    postings: list[tuple[str, int | None, Decimal, Account]] = []
    no_account = Account("", (), "AutoAccounting decides")

    def account(template: str, product: Matched | None = None, line_number: int | None = None) -> Account:
        if accounts is None:
            return no_account
        return accounts.build(template, product=product, line_number=line_number)

    live_product_types = {r.match_type for r in rules.products if is_effective(r, on)}
    number = 0
    for source in document.lines:
        gross, discount, tax = q(source.row_total), q(source.discount), q(source.tax)
        # With tax-inclusive prices a discount carries tax, which Commerce gives back as the discount tax
        # compensation (row_total - discount + tax + compensation is the line's part of the grand total): the
        # discount off the net price is what is left.
        compensation = q(source.discount_tax_compensation)
        if source.qty == 0 and not (gross or discount or tax or compensation):
            continue
        net_discount = discount - compensation
        product = match_product(source, rules.products, on)
        product_rule = product.rule if product is not None else None
        product_gaps = untested_match_types(
            product,
            PRODUCT_MATCH_TYPES,
            {"attribute_set": source.attribute_set_id, "category": source.category_ids},
            live_product_types,
        )
        if product_gaps:
            problems.add(
                "product_data_missing",
                f"Line {number + 1}: SKU {source.sku} has no {_words(product_gaps, _DATA_WORDS)} in the document, so "
                f"the product rules by {_words(product_gaps, MATCH_LABELS)} could not be tried (it would have used "
                f"{product.label if product is not None else 'no product rule'}).",
                f"Check that Commerce returns product {source.sku} (GET /V1/products/{source.sku}) with its attribute "
                "set and categories (the integration needs Magento_Catalog::products; a product in no category needs "
                f"one), or add a product rule for SKU {source.sku} in Mappings > Product rules, then replay the "
                "record.",
                line_number=number + 1,
            )
        elif product is None and needs_accounts:
            categories = ", ".join(str(c) for c in source.category_ids) or "none"
            problems.add(
                "product_mapping_missing",
                f"No product rule matches SKU {source.sku} (attribute set {source.attribute_set_id or 'none'}, "
                f"categories {categories}) and there is no default product rule.",
                f"Add a product rule for SKU {source.sku} (or a SKU pattern, attribute set or category that "
                "covers it, or a default product rule) in Mappings > Product rules, then replay the record.",
            )
        amount = gross if separate_discounts else gross - net_discount
        number += 1
        quantity, unit_price, qty_note = price_line(amount, source.qty, currency)
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_ITEM,
                description=_cut(f"{source.sku} {source.name}".strip() + qty_note, DESCRIPTION_MAX),
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
            )
        )
        postings.append((REVENUE, number, amount, account("revenue", product, number)))
        if tax:
            postings.append((TAX, number, tax, account("tax", None, number)))
        if separate_discounts and net_discount:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_DISCOUNT,
                    description=_cut(f"Discount {source.sku}", DESCRIPTION_MAX),
                    quantity=Decimal("1"),
                    unit_selling_price=-net_discount,
                    amount=-net_discount,
                    sku=source.sku,
                    source_line_id=source.line_id,
                    reason=f"discount on line {number - 1}" + _compensation_note(discount, compensation),
                )
            )
            postings.append((REVENUE, number, -net_discount, account("discount", product, number)))

    shipping, shipping_discount, shipping_tax, shipping_compensation = (
        q(document.shipping_amount),
        q(document.shipping_discount),
        q(document.shipping_tax),
        q(document.shipping_discount_tax_compensation),
    )
    if shipping or shipping_discount or shipping_tax or shipping_compensation:
        shipping_net_discount = shipping_discount - shipping_compensation
        freight = shipping if separate_discounts else shipping - shipping_net_discount
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_FREIGHT,
                description="Shipping",
                quantity=Decimal("1"),
                unit_selling_price=freight,
                amount=freight,
                tax_amount=shipping_tax,
                reason="shipping",
            )
        )
        postings.append((FREIGHT, number, freight, account("freight", None, number)))
        if shipping_tax:
            postings.append((TAX, number, shipping_tax, account("tax", None, number)))
        if separate_discounts and shipping_net_discount:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_DISCOUNT,
                    description="Shipping discount",
                    quantity=Decimal("1"),
                    unit_selling_price=-shipping_net_discount,
                    amount=-shipping_net_discount,
                    reason="shipping discount" + _compensation_note(shipping_discount, shipping_compensation),
                )
            )
            postings.append((REVENUE, number, -shipping_net_discount, account("discount", None, number)))

    # The lines carry their compensation. A payload whose items do not is caught up from the header, which counts
    # the items' compensation on an order and the items' and shipping's on an invoice or credit memo.
    unplaced = Decimal("0")
    if document.discount_tax_compensation and not any(ln.discount_tax_compensation for ln in document.lines):
        unplaced = q(document.discount_tax_compensation)
        if document.kind != "order":
            unplaced -= shipping_compensation
    if unplaced:
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_DISCOUNT,
                description="Discount tax compensation",
                quantity=Decimal("1"),
                unit_selling_price=unplaced,
                amount=unplaced,
                reason=f"discount tax compensation {unplaced} from the Commerce totals (its items carry none)",
            )
        )
        postings.append(
            (REVENUE, number, unplaced, account("discount" if separate_discounts else "revenue", None, number))
        )

    for text, value in (
        ("Refund adjustment", q(document.adjustment_positive)),
        ("Adjustment fee", -q(document.adjustment_negative)),
    ):
        if value:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_ADJUSTMENT,
                    description=text,
                    quantity=Decimal("1"),
                    unit_selling_price=value,
                    amount=value,
                    reason="credit memo adjustment",
                )
            )
            postings.append((REVENUE, number, value, account("revenue", None, number)))

    # Gift cards, store credit and reward points are payments, not price changes: the sale keeps its full price
    # and these lines (on the prepayment account) bring the document down to the grand total Commerce reports,
    # which is what the customer still owes (or, on a credit memo, what is refunded by other means).
    for field_name, text in PREPAYMENTS:
        paid = q(getattr(document, field_name))
        if not paid:
            continue
        number += 1
        if document.kind == "creditmemo":
            why = f"{paid} {currency} refunded to the {text.lower()} in Commerce, not part of its grand total"
        else:
            why = f"{paid} {currency} paid by {text.lower()} in Commerce, not part of its grand total"
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_PREPAYMENT,
                description=text,
                quantity=Decimal("1"),
                unit_selling_price=-paid,
                amount=-paid,
                reason=why,
            )
        )
        postings.append((REVENUE, number, -paid, account("prepayment", None, number)))

    commerce_total = q(document.grand_total)
    plan_total = sum((line.amount + line.tax_amount for line in lines), Decimal("0"))
    residue = commerce_total - plan_total
    # Commerce rounds per line and sums; we round per amount. Each line may differ by at most one minor unit.
    # Count Commerce's lines (items, shipping, adjustments) before our rounding, so amounts that round to zero
    # here still count.
    commerce_lines = len(document.lines) + sum(
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
    minor_unit = Decimal(1).scaleb(-currency_exponent(currency))
    tolerance = minor_unit * max(commerce_lines, 1)
    if residue and abs(residue) <= tolerance:
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_ROUNDING,
                description="Rounding",
                quantity=Decimal("1"),
                unit_selling_price=residue,
                amount=residue,
                reason=f"rounding difference {residue}, within {tolerance} for {commerce_lines} Commerce lines",
            )
        )
        postings.append((REVENUE, number, residue, account("rounding", None, number)))
        plan_total += residue
    elif residue:
        problems.add(
            "totals_mismatch",
            f"totals do not match: plan {plan_total}, Commerce {commerce_total}, "
            f"difference {plan_total - commerce_total} {currency}.",
            "Compare the order's lines, discounts, shipping and tax in Commerce with the plan preview; correct "
            "the order (or the connection's discount mode) and replay, or mark the record ignored and post it "
            "by hand.",
        )

    distributions: list[Distribution] = []
    journal_lines: list[JournalLine] = []
    if manual:
        for account_class, line_number, value, acct in postings:
            distributions.append(
                Distribution(account_class, line_number, acct.combination, value, acct.reason, acct.segment_values)
            )
        receivable = account("receivable")
        distributions.append(
            Distribution(
                RECEIVABLE, None, receivable.combination, plan_total, receivable.reason, receivable.segment_values
            )
        )

    if journal:
        number_text = header.transaction_number
        clearing = account("clearing")
        journal_lines.append(_journal_line(clearing, plan_total, debit=True, description=f"{number_text} clearing"))
        by_number = {line.line_number: line for line in lines}
        for account_class, line_number, value, acct in postings:
            if not value:
                continue
            line = by_number.get(line_number) if line_number is not None else None
            what = f"tax {line.description}" if account_class == TAX and line else (line.description if line else "")
            journal_lines.append(_journal_line(acct, value, debit=False, description=f"{number_text} {what}"))
        journal_lines = [line for line in journal_lines if line.entered_dr or line.entered_cr]
        debits = sum((line.entered_dr or Decimal("0") for line in journal_lines), Decimal("0"))
        credits = sum((line.entered_cr or Decimal("0") for line in journal_lines), Decimal("0"))
        if debits != credits:  # pragma: no cover - the clearing line is built from the same amounts
            problems.add(
                "journal_unbalanced",
                f"The sales journal does not balance: debits {debits}, credits {credits}.",
                "Report this plan to the ml-connector maintainers; do not post it by hand.",
            )

    layout = accounts.layout if accounts is not None else None
    return PostingPlan(
        connection=defaults.slug,
        document_kind=document.kind,
        document_number=document.increment_id,
        entity_id=document.entity_id,
        currency=currency,
        commerce_total=commerce_total,
        header=header,
        lines=tuple(lines),
        distributions=tuple(distributions),
        journal_lines=tuple(journal_lines),
        problems=tuple(problems.items),
        rules_date=on,
        distributions_mode="manual" if manual else "auto",
        journal_mode=defaults.journal_mode,
        segment_names=layout.segment_names if layout is not None else (),
        delimiter=layout.delimiter if layout is not None else "-",
    )


def _journal_line(acct: Account, value: Decimal, *, debit: bool, description: str) -> JournalLine:
    # A negative amount (a discount, a negative rounding) goes on the other side.
    if value < 0:
        debit, value = not debit, -value
    return JournalLine(
        combination=acct.combination,
        entered_dr=value if debit else None,
        entered_cr=None if debit else value,
        description=_cut(description.strip(), DESCRIPTION_MAX),
        reason=acct.reason,
        segment_values=acct.segment_values,
    )


def _header(
    document: SalesDocument,
    defaults: ConnectionDefaults,
    on: date,
    store: Matched | None,
    customer: Matched | None,
    problems: _Problems,
    *,
    original_invoice_number: str,
) -> PlanHeader:
    rule = store.rule if store is not None and isinstance(store.rule, StoreRuleData) else None
    credit_memo = document.kind == "creditmemo"

    def pick(field_name: str, default: str) -> str:
        value = getattr(rule, field_name, "") if rule is not None else ""
        return value or default

    business_unit = pick("business_unit", defaults.business_unit)
    transaction_source = pick("transaction_source", defaults.transaction_source)
    if credit_memo:
        transaction_type = pick("credit_memo_transaction_type", defaults.credit_memo_transaction_type)
    else:
        transaction_type = pick("transaction_type", defaults.transaction_type)
    for label, value in (
        ("business unit", business_unit),
        ("transaction source", transaction_source),
        ("transaction type", transaction_type),
    ):
        if not value:
            problems.add(
                "posting_default_missing",
                f"No {label} is set for this store or the connection.",
                f"Set the {label} on the connection or on a store rule in Mappings > Store rules, then replay "
                "the record.",
            )

    c = document.customer
    if customer is None:
        who = f"customer {c.commerce_id}" if c.commerce_id and not c.is_guest else "guest customer"
        problems.add(
            "customer_mapping_missing",
            f"No customer rule matches {who} (email {c.email or 'none'}, group {c.group_id or 'none'}, company "
            f"{c.company or 'none'}) and there is no default customer rule.",
            "Add a customer rule for this customer (by customer id, email, company or customer group) or a "
            "default customer rule in Mappings > Customer rules, then replay the record.",
        )
    customer_rule = customer.rule if customer is not None else None
    bill_to_number = getattr(customer_rule, "bill_to_customer_number", "")
    bill_to_site = getattr(customer_rule, "bill_to_site", "")

    currency = document.currency.upper()
    ledger_currency = (pick("ledger_currency", defaults.ledger_currency) or currency).upper()
    conversion: Conversion | None = None
    mode = rule.currency_mode if rule is not None else CURRENCY_KEEP
    if currency != ledger_currency and mode == CURRENCY_CONVERT:
        rate_type = rule.conversion_rate_type if rule is not None else ""
        rate: Decimal | None = None
        if rate_type == USER_RATE_TYPE:
            # Commerce: order amount = base amount x base_to_order_rate. Fusion wants invoice -> ledger.
            if (document.base_currency or "").upper() == ledger_currency and document.base_to_order_rate:
                rate = (Decimal(1) / Decimal(document.base_to_order_rate)).quantize(Decimal(1).scaleb(-RATE_PLACES))
            else:
                problems.add(
                    "conversion_rate_missing",
                    f"The store rule asks for the User rate from {currency} to {ledger_currency}, but the order "
                    f"carries no rate from {ledger_currency} (its base currency is "
                    f"{document.base_currency or 'unknown'}).",
                    "Use a Fusion rate type such as Corporate on the store rule, or set the Commerce base currency "
                    "to the ledger currency, then replay the record.",
                )
        if not rate_type:
            problems.add(
                "conversion_rate_type_missing",
                f"The store rule converts {currency} to {ledger_currency} but names no conversion rate type.",
                "Set the conversion rate type (for example Corporate) on the store rule, then replay the record.",
            )
        conversion = Conversion(rate_type=rate_type, conversion_date=on, rate=rate)

    prefix = defaults.transaction_number_prefix
    # Commerce numbers orders, invoices and credit memos in separate sequences; credit memos get their own
    # marker so "MAG-000000012" the invoice and credit memo 000000012 never share a Fusion number.
    transaction_number = f"{prefix}CM-{document.increment_id}" if credit_memo else f"{prefix}{document.increment_id}"
    original = ""
    if credit_memo:
        original = original_invoice_number
        if not original and defaults.invoice_event == "order" and document.order_increment_id:
            original = f"{prefix}{document.order_increment_id}"
    kind_words = {"order": "order", "invoice": "invoice", "creditmemo": "credit memo"}
    comments = f"Adobe Commerce {kind_words.get(document.kind, document.kind)} {document.increment_id}"
    if document.kind != "order" and document.order_increment_id:
        comments += f" for order {document.order_increment_id}"
    if original:
        comments += f"; credits invoice {original}"

    return PlanHeader(
        business_unit=business_unit,
        transaction_source=transaction_source,
        transaction_type=transaction_type,
        transaction_number=transaction_number,
        transaction_date=on,
        accounting_date=on,
        bill_to_customer_number=bill_to_number,
        bill_to_site=bill_to_site,
        payment_terms="" if credit_memo else defaults.payment_terms,
        currency=currency,
        conversion=conversion,
        purchase_order=document.purchase_order_number[:50],
        cross_reference=f"commerce-{document.kind}-{document.entity_id}",
        comments=_cut(comments, COMMENTS_MAX),
        original_invoice_number=original,
        bill_to_reason=customer.label if customer is not None else "no customer rule",
        store_reason=store.label if store is not None else "connection defaults",
    )
