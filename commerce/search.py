"""Adobe Commerce `searchCriteria` as flat query parameters:
`searchCriteria[filter_groups][0][filters][0][field]=updated_at&...[value]=...&...[condition_type]=gteq`.
Filters inside one group are OR'd, groups are AND'd (Adobe's "Search using REST endpoints")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

MAX_PAGE_SIZE = 300  # Commerce's maximum when input limiting is on (webapi/validation/maximum_page_size)
CONDITIONS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gteq",
        "lt",
        "lteq",
        "like",
        "nlike",
        "in",
        "nin",
        "null",
        "notnull",
        "from",
        "to",
        "finset",
        "nfinset",
        "moreq",
    }
)
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LIST_CONDITIONS = frozenset({"in", "nin", "finset", "nfinset"})


def commerce_value(value: Any) -> str:
    """A filter value as Commerce expects it: datetimes in UTC as `YYYY-MM-DD HH:MM:SS` (how it stores them)."""
    if value is None or isinstance(value, bool):
        raise ValueError("A filter value must be a string, number, date or datetime.")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("A datetime filter needs a time zone (Commerce stores UTC).")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal | str):
        return str(value)
    raise ValueError(f"A filter value cannot be a {type(value).__name__}.")


@dataclass(frozen=True)
class Filter:
    field: str
    value: str
    condition_type: str = "eq"

    @classmethod
    def of(cls, field: str, value: Any, condition_type: str = "eq") -> Filter:
        if not isinstance(field, str) or not _FIELD.match(field):
            raise ValueError(f"{field!r} is not a Commerce field name.")
        if condition_type not in CONDITIONS:
            raise ValueError(f"{condition_type!r} is not a Commerce condition type ({', '.join(sorted(CONDITIONS))}).")
        if condition_type in _LIST_CONDITIONS and isinstance(value, list | tuple | set | frozenset):
            text = ",".join(commerce_value(v) for v in value)
        elif condition_type in ("null", "notnull") and value in (None, True):
            text = "1"
        else:
            text = commerce_value(value)
        return cls(field=field, value=text, condition_type=condition_type)


@dataclass(frozen=True)
class SearchCriteria:
    """An immutable builder: each method returns a new SearchCriteria.

    `SearchCriteria().where("updated_at", since, "gteq").order_by("updated_at").order_by("entity_id")
    .page(1, size=300).to_params()`"""

    filter_groups: tuple[tuple[Filter, ...], ...] = ()
    sort_orders: tuple[tuple[str, str], ...] = ()
    page_size: int = 100
    current_page: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"The page size must be between 1 and {MAX_PAGE_SIZE}.")
        if self.current_page < 1:
            raise ValueError("Pages are counted from 1.")

    def where(self, field: str, value: Any, condition_type: str = "eq") -> SearchCriteria:
        """Add a filter group of one filter (AND with the other groups)."""
        return self.where_any([(field, value, condition_type)])

    def where_any(self, filters: Iterable[tuple[str, Any, str]]) -> SearchCriteria:
        """Add a filter group whose filters are OR'd."""
        group = tuple(Filter.of(field, value, condition) for field, value, condition in filters)
        if not group:
            raise ValueError("A filter group needs at least one filter.")
        return replace(self, filter_groups=(*self.filter_groups, group))

    def order_by(self, field: str, direction: str = "ASC") -> SearchCriteria:
        direction = direction.upper()
        if not _FIELD.match(field) or direction not in ("ASC", "DESC"):
            raise ValueError(f"Cannot sort by {field!r} {direction!r}.")
        return replace(self, sort_orders=(*self.sort_orders, (field, direction)))

    def page(self, current_page: int, *, size: int | None = None) -> SearchCriteria:
        return replace(self, current_page=current_page, page_size=self.page_size if size is None else size)

    def to_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for g, group in enumerate(self.filter_groups):
            for f, item in enumerate(group):
                prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
                params[f"{prefix}[field]"] = item.field
                params[f"{prefix}[value]"] = item.value
                params[f"{prefix}[condition_type]"] = item.condition_type
        for s, (field, direction) in enumerate(self.sort_orders):
            params[f"searchCriteria[sortOrders][{s}][field]"] = field
            params[f"searchCriteria[sortOrders][{s}][direction]"] = direction
        params["searchCriteria[pageSize]"] = str(self.page_size)
        params["searchCriteria[currentPage]"] = str(self.current_page)
        return params
