"""A posting plan as JSON (money as strings, dates as ISO; stored on the record) and as readable HTML (the admin's
"Preview posting")."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string

from . import rules


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def plan_to_json(plan: rules.PostingPlan) -> dict[str, Any]:
    """A JSON-ready dict (for Record.plan); plan_from_json gives the same plan back."""
    return _jsonable(plan)


@functools.cache
def _field_types(kind: type) -> dict[str, Any]:
    """A plan dataclass's fields and their types, resolved once per process (typing.get_type_hints evaluates
    every annotation string on each call: it was most of the cost of loading a plan)."""
    hints = typing.get_type_hints(kind)
    return {f.name: hints[f.name] for f in dataclasses.fields(kind)}


def _build(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _build(options[0], value)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(kind)
        return tuple(_build(item_type, v) for v in value)
    if origin is not None and issubclass(origin, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        fields = _field_types(kind)
        return kind(**{k: _build(fields[k], v) for k, v in value.items() if k in fields})
    if kind is Decimal:
        return Decimal(value)
    if kind is date:
        return date.fromisoformat(value)
    return value


def plan_from_json(data: Mapping[str, Any]) -> rules.PostingPlan:
    return _build(rules.PostingPlan, data)


def plan_preview_html(plan: rules.PostingPlan) -> str:
    """The plan as readable HTML for the admin ("Preview posting"): what would be sent, and why each account."""
    lines_by_number = {line.line_number: line for line in plan.lines}
    distributions = [
        {"d": d, "line": lines_by_number.get(d.line_number) if d.line_number is not None else None}
        for d in plan.distributions
    ]
    return render_to_string(
        "admin/mappings/plan_preview.html",
        {"plan": plan, "distributions": distributions, "segment_header": plan.delimiter.join(plan.segment_names)},
    )
