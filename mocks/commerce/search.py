"""searchCriteria, as the Adobe Commerce REST repositories read it (GET /V1/orders, /V1/invoices, /V1/creditmemos,
/V1/customers/search, /V1/products ...): `searchCriteria[filter_groups][g][filters][f][field|value|condition_type]`
on columns or custom attributes, filters
inside a group OR'd and groups AND'd, `sortOrders`, `pageSize` and `currentPage` (a page past the end is the last
page), answering `{items, search_criteria, total_count}`. Keys are accepted in snake_case and camelCase."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mocks.server import MockError, MockRequest, MockResponse, json_response

CONDITIONS = (
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
    "moreq",
)


_FILTER_KEY = re.compile(
    r"searchCriteria\[(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type|conditionType)\]"
)
_SORT_KEY = re.compile(r"searchCriteria\[(?:sort_orders|sortOrders)\]\[(\d+)\]\[(field|direction)\]")


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def field_value(row: dict[str, Any], field: str) -> Any:
    """A row's value for a search field: a column, else an EAV custom attribute of that code (Magento's
    repositories add every entity attribute to the collection before filtering); `entity_id` is a customer's or
    product's `id`."""
    if field in row:
        return row[field]
    if field == "entity_id" and "id" in row:
        return row["id"]
    for item in row.get("custom_attributes") or ():
        if isinstance(item, dict) and item.get("attribute_code") == field:
            return item.get("value")
    return None


def _predicate(spec: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """One filter as a test of a row; `in`/`nin` lists are parsed once, not per row."""
    field, condition, value = spec["field"], spec["condition_type"], spec["value"]
    if condition in ("in", "nin"):
        wanted = {v.strip() for v in value.split(",")}
        numbers = {n for n in map(_number, wanted) if n is not None}

        def listed(row: dict[str, Any]) -> bool:
            actual = field_value(row, field)
            number = _number(actual)
            found = str(actual) in wanted or (number is not None and number in numbers)
            return found if condition == "in" else not found

        return listed
    return lambda row: _matches(field_value(row, field), condition, value)


def _matches(actual: Any, condition: str, value: str) -> bool:
    """Does a field's value satisfy one filter? Numbers compare as numbers, the rest as text; `like` is
    case-insensitive with % as the wildcard."""
    if condition == "null":
        return actual is None
    if condition == "notnull":
        return actual is not None
    if condition in ("in", "nin"):
        wanted = [v.strip() for v in value.split(",")]
        found = str(actual) in wanted or (
            _number(actual) is not None and any(_number(actual) == _number(w) for w in wanted)
        )
        return found if condition == "in" else not found
    if condition == "finset":
        return value in str(actual or "").split(",")
    if actual is None:
        return False
    if condition in ("like", "nlike"):
        pattern = "".join(".*" if c == "%" else re.escape(c) for c in value)
        found = re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
        return found if condition == "like" else not found
    left: Any = _number(actual)
    right: Any = _number(value)
    if left is None or right is None:
        left, right = str(actual), value
    op = {
        "eq": "==",
        "neq": "!=",
        "gt": ">",
        "gteq": ">=",
        "moreq": ">=",
        "from": ">=",
        "lt": "<",
        "lteq": "<=",
        "to": "<=",
    }[condition]
    return {
        "==": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def _field_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Decimal, str]]:
    return lambda row: _sort_value(field_value(row, field))


def _sort_value(value: Any) -> tuple[int, Decimal, str]:
    number = _number(value)
    return (0, number, "") if number is not None else (1, Decimal(0), str(value))


def search(request: MockRequest, rows: list[dict[str, Any]], *, max_page_size: int) -> MockResponse:
    """Answer a searchCriteria query the way the Magento REST repositories do."""
    if not any(key.startswith("searchCriteria") for key in request.query):
        raise MockError(
            400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "searchCriteria"}
        )
    groups, sorts = _criteria_arguments(request)
    filter_groups = _filter_groups(groups)
    # Filters inside a group are OR'd; groups are AND'd.
    tests = [[_predicate(f) for f in g["filters"]] for g in filter_groups]
    rows = [r for r in rows if all(any(test(r) for test in group) for group in tests)]
    sort_orders = _sort_orders(sorts)
    for order in reversed(sort_orders):
        rows = sorted(rows, key=_field_key(order["field"]), reverse=order["direction"] == "DESC")
    total = len(rows)
    criteria: dict[str, Any] = {"filter_groups": filter_groups}
    if sort_orders:
        criteria["sort_orders"] = sort_orders
    rows = _page(request, rows, criteria, max_page_size=max_page_size)
    return json_response(200, {"items": rows, "search_criteria": criteria, "total_count": total})


def _criteria_arguments(
    request: MockRequest,
) -> tuple[dict[int, dict[int, dict[str, str]]], dict[int, dict[str, str]]]:
    """The filters ({group: {index: {field, value, condition_type}}}) and sort orders ({index: {field,
    direction}}) in the query string, by their bracketed indexes."""
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    for key in request.query:
        match = _FILTER_KEY.fullmatch(key)
        if match:
            group, index, part = int(match.group(1)), int(match.group(2)), match.group(3)
            part = "condition_type" if part == "conditionType" else part
            groups.setdefault(group, {}).setdefault(index, {})[part] = request.arg(key) or ""
            continue
        match = _SORT_KEY.fullmatch(key)
        if match:
            sorts.setdefault(int(match.group(1)), {})[match.group(2)] = request.arg(key) or ""
    return groups, sorts


def _filter_groups(groups: dict[int, dict[int, dict[str, str]]]) -> list[dict[str, Any]]:
    """The filter groups in index order, as search_criteria echoes them; a filter without a field or with an
    unknown condition_type is a 400."""
    filter_groups = []
    for group in sorted(groups):
        filters = []
        for index in sorted(groups[group]):
            spec = groups[group][index]
            condition = spec.get("condition_type") or "eq"
            if condition not in CONDITIONS:
                raise MockError(
                    400,
                    'Invalid value of "%value" provided for the %fieldName field.',
                    parameters={"value": condition, "fieldName": "condition_type"},
                )
            if not spec.get("field"):
                raise MockError(
                    400, '"%fieldName" is required. Enter and try again.', parameters={"fieldName": "field"}
                )
            filters.append({"field": spec["field"], "value": spec.get("value", ""), "condition_type": condition})
        filter_groups.append({"filters": filters})
    return filter_groups


def _sort_orders(sorts: dict[int, dict[str, str]]) -> list[dict[str, str]]:
    """The sort orders in index order (direction ASC unless given); a direction other than ASC/DESC is a 400."""
    sort_orders = []
    for index in sorted(sorts):
        spec = sorts[index]
        direction = (spec.get("direction") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise MockError(
                400,
                'Invalid value of "%value" provided for the %fieldName field.',
                parameters={"value": direction, "fieldName": "direction"},
            )
        sort_orders.append({"field": spec.get("field", ""), "direction": direction})
    return sort_orders


def _page(
    request: MockRequest, rows: list[dict[str, Any]], criteria: dict[str, Any], *, max_page_size: int
) -> list[dict[str, Any]]:
    """The rows of the asked page (all of them without a pageSize); the page size and number go into `criteria`."""
    size_raw = request.arg("searchCriteria[pageSize]") or request.arg("searchCriteria[page_size]")
    page_raw = request.arg("searchCriteria[currentPage]") or request.arg("searchCriteria[current_page]")
    try:
        size = int(size_raw) if size_raw else None
        page = int(page_raw) if page_raw else 1
    except ValueError:
        raise MockError(400, "The pageSize and currentPage of searchCriteria are numbers.") from None
    if size is None:
        return rows
    if size > max_page_size:
        raise MockError(400, "Maximum SearchCriteria pageSize is %max", parameters={"max": max_page_size})
    if size < 1 or page < 1:
        raise MockError(400, "The pageSize and currentPage of searchCriteria must be positive.")
    # Like Magento's collections, a page past the end is clamped to the last page: clients must stop on
    # total_count, not on an empty page.
    last_page = max(1, math.ceil(len(rows) / size))
    effective = min(page, last_page)
    criteria.update(page_size=size, current_page=page)
    return rows[(effective - 1) * size : effective * size]
