"""Fusion `q` expressions (REST-Framework-Version 4 expression syntax) built so a value can neither break nor
extend the filter: every value is one single-quoted literal with its quotes doubled, attribute names are
identifiers, operators come from an allow-list."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

OPERATORS = frozenset({"=", "!=", "<", ">", "<=", ">=", "like"})
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ORDER_BY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:(asc|desc))?$")

Clause = tuple[str, str, Any]


def literal(value: Any) -> str:
    """A value as one quoted literal: `O'Brien` -> `'O''Brien'`; datetimes in ISO 8601 with their offset."""
    if value is None or isinstance(value, bool):
        raise ValueError("A q value must be a string, number, date or datetime (not None or a boolean).")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("A datetime in a q expression needs a time zone (Fusion compares with offsets).")
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"A q value cannot be a {type(value).__name__}.")
    if _CONTROL.search(text):
        raise ValueError("A q value must not contain control characters (line breaks, tabs, NUL).")
    return "'" + text.replace("'", "''") + "'"


def clause(attr: str, op: str, value: Any) -> str:
    if not isinstance(attr, str) or not _ATTR.match(attr):
        raise ValueError(f"{attr!r} is not a Fusion attribute name (letters, digits and _ only).")
    op_clean = op.strip().lower() if isinstance(op, str) else op
    if op_clean not in OPERATORS:
        raise ValueError(f"{op!r} is not an allowed q operator ({', '.join(sorted(OPERATORS))}).")
    return f"{attr} {op_clean} {literal(value)}"


def q_expr(*clauses: Clause) -> str:
    """`q_expr(("TransactionNumber", "=", "MAG-1"), ("BusinessUnit", "=", "Vision Operations"))` ->
    `TransactionNumber = 'MAG-1' and BusinessUnit = 'Vision Operations'`."""
    if not clauses:
        raise ValueError("A q expression needs at least one clause.")
    parts = []
    for item in clauses:
        if not isinstance(item, tuple) or len(item) != 3:
            raise ValueError("Each q clause is a tuple (attribute, operator, value).")
        parts.append(clause(*item))
    return " and ".join(parts)


def order_by(value: str) -> str:
    """Validate an `orderBy` value such as `LastUpdateDate,CustomerTransactionId:desc`."""
    fields = [part.strip() for part in value.split(",")] if isinstance(value, str) else []
    if not fields or not all(_ORDER_BY.match(field) for field in fields):
        raise ValueError(f"{value!r} is not an orderBy list (Attr or Attr:desc, separated by commas).")
    return ",".join(fields)


_FIELDS_GROUP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*:)?[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$")


def fields_param(value: str) -> str:
    """Validate a `fields` projection: `CustomerTransactionId,TransactionNumber` or, with a child,
    `TransactionNumber;receivablesInvoiceLines:LineNumber,Quantity`."""
    groups = [group.replace(" ", "") for group in value.split(";")] if isinstance(value, str) else []
    if not groups or not all(_FIELDS_GROUP.match(group) for group in groups):
        raise ValueError(f"{value!r} is not a fields list (Attr,Attr2 or Child:Attr, groups separated by ;).")
    return ";".join(groups)
