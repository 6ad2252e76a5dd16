"""A reconciliation run as Finance takes it away: its differences and its table by day and currency as CSV, and
a difference as one line of text (the command's summary)."""

from __future__ import annotations

import csv
import io
from typing import Any

from connector.documents import format_money, quantize

from ..models import ReconciliationDifference, ReconciliationRun

DIFFERENCE_COLUMNS = (
    "kind",
    "day",
    "commerce_kind",
    "commerce_number",
    "fusion_numbers",
    "currency",
    "commerce_amount",
    "fusion_amount",
    "difference",
    "record_id",
)
AMOUNT_COLUMNS = ("commerce_amount", "fusion_amount", "difference")
DAILY_COLUMNS = ("day", "currency", "commerce_count", "commerce_amount", "fusion_count", "fusion_amount")


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def differences_csv(run: ReconciliationRun) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(DIFFERENCE_COLUMNS)
    for d in run.differences.order_by("pk").iterator(chunk_size=2000):
        writer.writerow(_cell(_value(d, column)) for column in DIFFERENCE_COLUMNS)
    return out.getvalue()


def _value(d: ReconciliationDifference, column: str) -> Any:
    value = getattr(d, column)
    if column in AMOUNT_COLUMNS and value is not None and d.currency:
        return quantize(value, d.currency)
    return value


def daily_csv(run: ReconciliationRun) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(DAILY_COLUMNS)
    for row in run.daily:
        writer.writerow(_cell(row.get(column)) for column in DAILY_COLUMNS)
    return out.getvalue()


def difference_line(d: ReconciliationDifference) -> str:
    commerce = f"{d.commerce_kind} {d.commerce_number}".strip() or "-"
    parts = [f"{d.day or ''} {d.get_kind_display()}: Commerce {commerce}", f"Fusion {d.fusion_numbers or '-'}"]
    if d.commerce_amount is not None:
        parts.append(f"Commerce amount {format_money(d.commerce_amount, d.currency)}")
    if d.fusion_amount is not None:
        parts.append(f"Fusion amount {format_money(d.fusion_amount, d.currency)}")
    if d.difference is not None:
        parts.append(f"difference {format_money(d.difference, d.currency)}")
    return ", ".join(parts)
