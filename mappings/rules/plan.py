"""The posting plan: what the resolver hands to the posting code, with a reason for every account and a problem
(and its fix) for every mapping that is missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Fusion's AccountClass words on receivablesInvoiceDistributions: Revenue, Receivable, Freight and Tax.
REVENUE, RECEIVABLE, FREIGHT, TAX = "Revenue", "Receivable", "Freight", "Tax"

# PlanLine.kind.
LINE_ITEM, LINE_FREIGHT, LINE_DISCOUNT, LINE_ADJUSTMENT, LINE_PREPAYMENT, LINE_ROUNDING = (
    "item",
    "freight",
    "discount",
    "adjustment",
    "prepayment",
    "rounding",
)

# Fusion column limits the plan respects so the posting code never has to cut.
DESCRIPTION_MAX = 240
COMMENTS_MAX = 240


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
class PlanTaxLine:
    """One manual tax line: a Commerce tax (of the item, or of the shipping placed on this line) as the tax rule
    maps it to Fusion's regime, tax, status, rate and jurisdiction."""

    tax_regime_code: str
    tax_rate_code: str
    amount: Decimal
    tax: str = ""
    tax_status_code: str = ""
    tax_jurisdiction_code: str = ""
    source: str = "item"  # item | shipping
    reason: str = ""


@dataclass(frozen=True)
class PlanLine:
    line_number: int
    kind: str  # item | freight | discount | adjustment | prepayment | rounding
    description: str
    quantity: Decimal
    unit_selling_price: Decimal
    amount: Decimal
    # Commerce's tax on the line (and the shipping tax placed on it): sent as tax_lines in the manual tax mode,
    # what Fusion's computed tax is compared with in the fusion mode.
    tax_amount: Decimal = Decimal("0")
    item_number: str = ""
    memo_line: str = ""
    sku: str = ""
    source_line_id: str = ""
    tax_percent: Decimal = Decimal("0")
    reason: str = ""
    tax_classification_code: str = ""
    tax_lines: tuple[PlanTaxLine, ...] = ()
    freight_amount: Decimal = Decimal("0")  # shipping allocated to this line (freight mode allocated)
    tax_reason: str = ""


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
    tax_mode: str = "manual"  # manual | fusion
    freight_mode: str = "allocated"  # allocated | header (a credit memo's freight is always at the header)
    header_freight: Decimal = Decimal("0")  # shipping at the header (freight mode header)

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
    def freight_total(self) -> Decimal:
        return sum((line.freight_amount for line in self.lines), Decimal("0")) + self.header_freight

    @property
    def total(self) -> Decimal:
        return self.lines_total + self.freight_total + self.tax_total

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


class Problems:
    """The plan's problems as the resolver finds them, each (code and message) once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, code: str, message: str, resolution: str, line_number: int | None = None) -> None:
        if any(p.code == code and p.message == message for p in self.items):
            return
        self.items.append(Problem(code, message, resolution, line_number))


def cut(text: str, limit: int) -> str:
    """text, shortened to limit characters (the last one an ellipsis) when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
