"""The comparison at the heart of reconciliation, over plain data: Commerce documents in, Fusion AR documents in,
totals by day and currency and the differences out. No database and no I/O.

Both sides arrive as streams. Only a compact entry per Commerce document is held (its Fusion number as the key,
then kind, day, currency and amount in minor units), never the documents themselves; each Fusion document is
matched against it as it streams past and then forgotten, except for the number it matched with, so a second
Fusion document for the same Commerce document is known for a duplicate."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from connector.documents import currency_exponent, quantize

ORDER, INVOICE, CREDIT_MEMO = "order", "invoice", "creditmemo"
KINDS = (ORDER, INVOICE, CREDIT_MEMO)

MISSING_IN_FUSION = "missing_in_fusion"
MISSING_IN_COMMERCE = "missing_in_commerce"
AMOUNT_DIFFERS = "amount_differs"
DUPLICATE_IN_FUSION = "duplicate_in_fusion"


@dataclass(frozen=True, slots=True)
class CommerceDoc:
    """A Commerce document as the connection posts it: its AR amount is the grand total, negative for a refund."""

    kind: str
    number: str  # increment id
    day: date  # created_at in the connection's time zone: the Fusion transaction date
    currency: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class FusionDoc:
    resource: str
    number: str  # TransactionNumber
    day: date  # TransactionDate
    currency: str
    amount: Decimal  # EnteredAmount


@dataclass(frozen=True)
class Difference:
    kind: str
    day: date | None
    commerce_kind: str = ""
    commerce_number: str = ""
    fusion_numbers: tuple[str, ...] = ()
    currency: str = ""
    commerce_amount: Decimal | None = None
    fusion_amount: Decimal | None = None

    @property
    def difference(self) -> Decimal | None:
        """Fusion less Commerce, when both sides have an amount in one currency."""
        if self.commerce_amount is None or self.fusion_amount is None:
            return None
        return self.fusion_amount - self.commerce_amount


def fusion_number_for(kind: str, number: str, prefix: str) -> str:
    """The TransactionNumber the connection gives a Commerce document (mappings.rules.header): the prefix and the
    increment id; a credit memo's with its own marker, as Commerce numbers each kind in its own sequence."""
    return f"{prefix}CM-{number}" if kind == CREDIT_MEMO else f"{prefix}{number}"


def _minor(amount: Decimal, currency: str) -> int:
    return int(quantize(amount, currency).scaleb(currency_exponent(currency)))


def _major(minor: int, currency: str) -> Decimal:
    return quantize(Decimal(minor).scaleb(-currency_exponent(currency)), currency)


@dataclass
class DayTotals:
    commerce_count: int = 0
    commerce_minor: int = 0
    fusion_count: int = 0
    fusion_minor: int = 0


@dataclass
class Reconciler:
    """Feed every Commerce document first (`add_commerce`), then stream Fusion's (`add_fusion`), then `finish()`.

    `aliases` maps a Fusion number the connector knows it posted under (an auto-numbering transaction source, an
    identity from before the mappings changed) to the number the Commerce document is expected under."""

    prefix: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    commerce_count: int = 0
    fusion_count: int = 0
    matched_count: int = 0
    # key -> (kind index, day ordinal, currency, amount in minor units); matched keys move to `_matched`.
    _expected: dict[str, tuple[int, int, str, int]] = field(default_factory=dict)
    # key -> kind index, or (kind index, Fusion number) when it matched under another number (an alias)
    _matched: dict[str, int | tuple[int, str]] = field(default_factory=dict)
    _days: dict[tuple[int, str], DayTotals] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    def _day(self, day: date, currency: str) -> DayTotals:
        key = (day.toordinal(), currency)
        totals = self._days.get(key)
        if totals is None:
            totals = self._days[key] = DayTotals()
        return totals

    def add_commerce(self, doc: CommerceDoc) -> None:
        currency = sys.intern(doc.currency)
        minor = _minor(doc.amount, currency)
        key = fusion_number_for(doc.kind, doc.number, self.prefix)
        self.commerce_count += 1
        totals = self._day(doc.day, currency)
        totals.commerce_count += 1
        totals.commerce_minor += minor
        if key in self._expected:
            return  # the same document read twice (a page boundary moved): counted once above is enough
        self._expected[key] = (KINDS.index(doc.kind), doc.day.toordinal(), currency, minor)

    def add_fusion(self, doc: FusionDoc) -> None:
        currency = sys.intern(doc.currency)
        minor = _minor(doc.amount, currency)
        self.fusion_count += 1
        totals = self._day(doc.day, currency)
        totals.fusion_count += 1
        totals.fusion_minor += minor
        key = self.aliases.get(doc.number, doc.number)
        expected = self._expected.pop(key, None)
        if expected is not None:
            self._matched[key] = expected[0] if doc.number == key else (expected[0], doc.number)
            self.matched_count += 1
            _, _, want_currency, want_minor = expected
            if want_currency != currency or want_minor != minor:
                self.differences.append(self._commerce_difference(AMOUNT_DIFFERS, key, expected, doc))
            return
        matched = self._matched.get(key)
        if matched is not None:
            kind_index, first = matched if isinstance(matched, tuple) else (matched, key)
            self.differences.append(
                Difference(
                    DUPLICATE_IN_FUSION,
                    doc.day,
                    commerce_kind=KINDS[kind_index],
                    commerce_number=self._number_of(key, kind_index),
                    fusion_numbers=(first, doc.number),
                    currency=currency,
                    fusion_amount=_major(minor, currency),
                )
            )
            return
        self.differences.append(
            Difference(
                MISSING_IN_COMMERCE,
                doc.day,
                fusion_numbers=(doc.number,),
                currency=currency,
                fusion_amount=_major(minor, currency),
            )
        )

    def _number_of(self, key: str, kind_index: int) -> str:
        """The Commerce increment id behind a key built by fusion_number_for."""
        number = key.removeprefix(self.prefix)
        return number.removeprefix("CM-") if KINDS[kind_index] == CREDIT_MEMO else number

    def _commerce_difference(
        self, kind: str, key: str, expected: tuple[int, int, str, int], doc: FusionDoc | None
    ) -> Difference:
        kind_index, day, currency, minor = expected
        number = self._number_of(key, kind_index)
        fusion_amount = _major(_minor(doc.amount, doc.currency), doc.currency) if doc is not None else None
        return Difference(
            kind,
            date.fromordinal(day),
            commerce_kind=KINDS[kind_index],
            commerce_number=number,
            fusion_numbers=(doc.number,) if doc is not None else (),
            currency=currency,
            commerce_amount=_major(minor, currency),
            fusion_amount=fusion_amount if doc is None or doc.currency == currency else None,
        )

    def finish(self) -> list[Difference]:
        """Every Commerce document no Fusion document matched is missing in Fusion. Answers all differences,
        by day."""
        for key, expected in self._expected.items():
            self.differences.append(self._commerce_difference(MISSING_IN_FUSION, key, expected, None))
        self._expected.clear()
        self.differences.sort(key=lambda d: (d.day or date.min, d.kind, d.commerce_number, d.fusion_numbers))
        return self.differences

    def daily(self) -> list[dict[str, object]]:
        """The totals by day and currency, as stored on the run (amounts as strings)."""
        rows = []
        for (day, currency), totals in sorted(self._days.items()):
            rows.append(
                {
                    "day": date.fromordinal(day).isoformat(),
                    "currency": currency,
                    "commerce_count": totals.commerce_count,
                    "commerce_amount": str(_major(totals.commerce_minor, currency)),
                    "fusion_count": totals.fusion_count,
                    "fusion_amount": str(_major(totals.fusion_minor, currency)),
                }
            )
        return rows

    def totals_by_currency(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Commerce and Fusion totals per currency over the whole range."""
        sums: dict[str, list[int]] = {}
        for (_, currency), totals in self._days.items():
            both = sums.setdefault(currency, [0, 0])
            both[0] += totals.commerce_minor
            both[1] += totals.fusion_minor
        return {c: (_major(a, c), _major(b, c)) for c, (a, b) in sorted(sums.items())}
