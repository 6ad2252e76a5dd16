"""Account combinations: the template, overlaid by the store's legal-entity values, then by the customer and
product dimensions; and segment values as text ("account=4110; channel=20"), the form the admin and the
CSV/XLSX files use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from .data import DEFAULT_WINNER, TEMPLATE_CLASSES, RuleSet
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
