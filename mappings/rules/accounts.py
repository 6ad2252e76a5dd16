"""Account combinations: the template, overlaid by the store's legal-entity values, then by the customer and
product dimensions; and segment values as text ("account=4110; channel=20"), the form the admin and the
CSV/XLSX files use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from .data import DEFAULT_WINNER, TEMPLATE_CLASSES, AccountTemplateData, RuleSet, SegmentLayoutData
from .matching import Matched, is_effective, latest
from .plan import Problems

# What a template class is for, where the name alone does not say it (used in the "template missing" fix).
TEMPLATE_PURPOSES = {
    "prepayment": "the gift card, store credit and reward points liability or clearing account",
}


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


@dataclass(frozen=True)
class Account:
    """A built combination: empty when it could not be built (the problem says why)."""

    combination: str
    segment_values: tuple[str, ...]
    reason: str


class AccountBuilder:
    """Builds combinations for one document, collecting problems once each."""

    def __init__(
        self,
        *,
        rules: RuleSet,
        on: date,
        store: Matched | None,
        customer: Matched | None,
        problems: Problems,
    ) -> None:
        self.on = on
        self.store = store
        self.customer = customer
        self.problems = problems
        layouts = [layout for layout in rules.layouts if is_effective(layout, on)]
        self.layout = latest(layouts)
        self.templates = {
            account_class: latest(
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
        """The account_class combination (for the line line_number, when it is for a line): the template,
        overlaid by the store, customer and product rules, with a reason that says who set which segment."""
        layout = self.layout
        if layout is None:
            return Account("", (), "no segment layout")
        template = self.templates.get(account_class)
        if template is None:
            self._template_missing(account_class)
            return Account("", (), f"no {account_class} template")
        base = self._template_values(account_class, template, layout)
        if base is None:
            return Account("", (), f"{account_class} template does not fit the layout")

        segments = _Segments(layout.segment_names, base)
        if self.store is not None:
            segments.overlay_store(self.store.segments)
        segments.overlay_dimensions(
            self.customer.segments if self.customer is not None else {},
            product.segments if product is not None else {},
            layout.winners,
        )
        missing = self._check(account_class, layout, segments.values, line_number)
        values = tuple(segments.values.get(name, "") for name in layout.segment_names)
        combination = layout.delimiter.join(values) if not missing else ""
        reason = segments.reason(
            account_class, (("product", product), ("customer", self.customer), ("store", self.store))
        )
        return Account(combination, values, reason)

    def _template_missing(self, account_class: str) -> None:
        purpose = TEMPLATE_PURPOSES.get(account_class)
        self.problems.add(
            "template_missing",
            f"No {account_class} account template is effective on {self.on.isoformat()}.",
            f"Add the {account_class} account template (a full account combination"
            + (f": {purpose}" if purpose else "")
            + ") in Mappings > Account templates, then replay the record.",
        )

    def _template_values(
        self, account_class: str, template: AccountTemplateData, layout: SegmentLayoutData
    ) -> dict[str, str] | None:
        """The template's value for every segment of the layout; None (and a problem) when its combination
        does not have one value per segment."""
        names = layout.segment_names
        if template.segments:
            return {name: str(template.segments.get(name, "")) for name in names}
        parts = template.combination.split(layout.delimiter) if template.combination else []
        if len(parts) != len(names):
            self.problems.add(
                "template_invalid",
                f"The {account_class} account template {template.combination!r} has {len(parts)} segments; "
                f"the layout has {len(names)} ({', '.join(names)}).",
                f"Correct the {account_class} template so it has one value per segment, separated by "
                f"{layout.delimiter!r}, then replay the record.",
            )
            return None
        return dict(zip(names, parts, strict=True))

    def _check(
        self, account_class: str, layout: SegmentLayoutData, values: Mapping[str, str], line_number: int | None
    ) -> list[str]:
        """A problem for segments left without a value and for values that contain the delimiter; the
        segments without a value."""
        names = layout.segment_names
        missing = [name for name in names if not values.get(name)]
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
        bad = [name for name in names if layout.delimiter and layout.delimiter in values.get(name, "")]
        if bad:
            self.problems.add(
                "segment_invalid",
                f"Segment value for {', '.join(bad)} contains the delimiter {layout.delimiter!r}.",
                "Correct the segment value in the rule or template, then replay the record.",
            )
        return missing


class _Segments:
    """One combination's segment values as the overlay sets them: who set each (template, store, customer or
    product) and which values lost."""

    def __init__(self, names: tuple[str, ...], template_values: dict[str, str]) -> None:
        self.names = names
        self.values = template_values
        self.source = {name: "template" for name in names if template_values.get(name)}
        self.lost: list[str] = []

    def set(self, name: str, value: str, dimension: str) -> None:
        self.values[name], self.source[name] = str(value), dimension

    def overlay_store(self, store_values: Mapping[str, str]) -> None:
        """The store's legal-entity values replace the template's."""
        for name in self.names:
            value = store_values.get(name)
            if value:
                self.set(name, value, "store")

    def overlay_dimensions(
        self, customer_values: Mapping[str, str], product_values: Mapping[str, str], winners: Mapping[str, str]
    ) -> None:
        """Then the customer's and the product's: where both set a segment the layout's winner for it takes it
        (the product by default); a segment won by the template ignores both."""
        for name in self.names:
            c_value, p_value = customer_values.get(name), product_values.get(name)
            if not c_value and not p_value:
                continue
            winner = winners.get(name, DEFAULT_WINNER)
            if winner == "template":
                locked = [dim for dim, v in (("customer", c_value), ("product", p_value)) if v]
                self.lost.append(
                    f"{'/'.join(locked)} value for {name} ignored: the {name} segment follows the template"
                )
            elif c_value and p_value:
                if winner == "customer":
                    self.set(name, c_value, "customer")
                    self.lost.append(f"product wanted {name}={p_value}, customer wins {name}")
                else:
                    self.set(name, p_value, "product")
                    self.lost.append(f"customer wanted {name}={c_value}, product wins {name}")
            elif c_value:
                self.set(name, c_value, "customer")
            elif p_value:
                self.set(name, p_value, "product")

    def reason(self, account_class: str, matches: Sequence[tuple[str, Matched | None]]) -> str:
        """Which rule set which segments, then the template for the rest, then what lost."""
        parts: list[str] = []
        for dimension, matched in matches:
            set_here = [f"{name}={self.values[name]}" for name in self.names if self.source.get(name) == dimension]
            if set_here and matched is not None:
                parts.append(f"{matched.label} set {', '.join(set_here)}")
        if any(self.source.get(name) == "template" for name in self.names):
            parts.append(f"template {account_class} for the rest" if parts else f"template {account_class}")
        parts.extend(self.lost)
        return "; ".join(parts)
