"""CSV and XLSX import and export of the rules: all rows or none, checked in one transaction, every change
audited through rule_save."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tablib
from django.db import transaction

from connector.models import Connection

from .models import RULE_MODELS
from .resources import RESOURCES

KINDS = tuple(RULE_MODELS)  # layout, template, store, customer, product: the order files are imported in
FORMATS = ("csv", "xlsx")


@dataclass
class RowIssue:
    kind: str
    where: str
    messages: list[str]

    def __str__(self) -> str:
        return f"{self.where} ({self.kind}): {'; '.join(self.messages)}"


@dataclass
class ImportReport:
    dry_run: bool
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> new/update/skip -> n
    issues: list[RowIssue] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.issues

    def summary(self) -> str:
        parts = []
        for kind in KINDS:
            c = self.counts.get(kind)
            if c:
                new, changed, same = c.get("new", 0), c.get("update", 0), c.get("skip", 0)
                parts.append(f"{kind}: {new} new, {changed} changed, {same} unchanged")
        return "; ".join(parts) or "no rows"


class _Table:
    """One file's rows for one kind, remembering where each row came from."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: list[dict[str, Any]] = []
        self.where: list[str] = []


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _read(content: bytes, file_format: str, kind: str | None) -> tuple[dict[str, _Table], list[RowIssue]]:
    if file_format not in FORMATS:
        raise ValueError(f"Unknown format {file_format!r}: use csv or xlsx.")
    sheets: list[tuple[str, tablib.Dataset]] = []
    if file_format == "csv":
        text = content.decode("utf-8-sig")
        sheets.append(("", tablib.Dataset().load(text, format="csv")))
    else:
        book = tablib.Databook()
        book.load(io.BytesIO(content), format="xlsx")
        sheets.extend((sheet.title or "", sheet) for sheet in book.sheets())

    tables: dict[str, _Table] = {}
    issues: list[RowIssue] = []
    for title, sheet in sheets:
        headers = [str(h or "").strip().lower() for h in (sheet.headers or [])]
        for index, values in enumerate(sheet, start=2):  # row 1 holds the headers
            row = {h: _cell(v) for h, v in zip(headers, values, strict=False) if h}
            if not any(str(v).strip() for v in row.values()):
                continue
            where = f"sheet {title!r} row {index}" if file_format == "xlsx" else f"line {index}"
            row_kind = str(row.get("kind") or "").strip() or kind or (title if title in KINDS else "")
            if row_kind not in KINDS:
                issues.append(RowIssue(row_kind or "?", where, [f"the kind column must be one of {', '.join(KINDS)}"]))
                continue
            if kind and row_kind != kind:
                continue
            table = tables.setdefault(row_kind, _Table(row_kind))
            row["kind"] = row_kind
            table.rows.append(row)
            table.where.append(where)
    return tables, issues


def _row_messages(error: Any) -> list[str]:
    if hasattr(error, "message_dict"):
        return [
            f"{name}: {' '.join(msgs)}" if name != "__all__" else " ".join(msgs)
            for name, msgs in error.message_dict.items()
        ]
    if hasattr(error, "messages"):
        return list(error.messages)
    return [str(error)]


# Rows checked per step: the progress callback hears after each step.
IMPORT_CHUNK_ROWS = 500
# progress(kind, rows just checked, rows in the file)
ImportProgress = Callable[[str, int, int], None]


def rules_import(
    *,
    content: bytes,
    file_format: str,
    actor: Any,
    connection: Connection | None = None,
    kind: str | None = None,
    dry_run: bool = False,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Import rule rows from a CSV or XLSX file: all of them, or none. Rows are checked in one transaction
    (layout, templates, stores, customers, products in that order, so later rows see earlier ones); any row
    error rolls everything back and is reported with its line. A dry run always rolls back.

    With `connection`, rows may leave the connection column empty and must not name another one. `progress`,
    when given, is called after every IMPORT_CHUNK_ROWS rows of a kind with the kind, the rows just checked
    and the rows in the file."""
    tables, issues = _read(content, file_format, kind)
    report = ImportReport(dry_run=dry_run, issues=issues)
    total = sum(len(table.rows) for table in tables.values())
    with transaction.atomic():
        for table_kind in KINDS:
            table = tables.get(table_kind)
            if table is None:
                continue
            resource = RESOURCES[table_kind](connection=connection, actor=actor)
            headers = sorted({h for row in table.rows for h in row})
            for start in range(0, len(table.rows), IMPORT_CHUNK_ROWS):
                rows = table.rows[start : start + IMPORT_CHUNK_ROWS]
                dataset = tablib.Dataset(headers=headers)
                for row in rows:
                    dataset.append([row.get(h, "") for h in headers])
                result = resource.import_data(
                    dataset,
                    dry_run=False,
                    raise_errors=False,
                    use_transactions=True,
                    rollback_on_validation_errors=True,
                    user=actor,
                )
                _report_result(report, table, result, offset=start)
                if progress is not None:
                    progress(table_kind, len(rows), total)
        report.applied = report.ok and not dry_run
        if not report.applied:
            transaction.set_rollback(True)
    return report


def _report_result(report: ImportReport, table: _Table, result: Any, *, offset: int) -> None:
    """Count one step's rows and keep its errors, each with the line it came from."""
    counts = report.counts.setdefault(table.kind, {})
    for row_result in result.rows:
        counts[row_result.import_type] = counts.get(row_result.import_type, 0) + 1
    for number, errors in result.row_errors():
        where = table.where[offset + number - 1]
        report.issues.append(RowIssue(table.kind, where, [_row_messages(e.error)[0] for e in errors]))
    for invalid in result.invalid_rows:
        where = table.where[offset + invalid.number - 1]
        report.issues.append(RowIssue(table.kind, where, _row_messages(invalid.error)))
    for error in result.base_errors:
        report.issues.append(RowIssue(table.kind, "file", [str(error.error)]))


def _workbook(sheets: list[tablib.Dataset]) -> bytes:
    """One sheet per kind. Every cell is text, so a note starting with "=" stays a note rather than
    becoming a formula Excel would run (and the file still imports back unchanged)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for dataset in sheets:
        sheet = book.create_sheet(title=dataset.title)
        sheet.append(list(dataset.headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in dataset:
            sheet.append(["" if value is None else str(value) for value in row])
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
        sheet.freeze_panes = "A2"
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def rules_export(*, connection: Connection, file_format: str = "csv", kinds: tuple[str, ...] = KINDS) -> bytes:
    """The connection's rules as one CSV (a kind column tells the rows apart) or one XLSX sheet per kind.
    Importing the result back changes nothing."""
    if file_format not in FORMATS:
        raise ValueError(f"Unknown format {file_format!r}: use csv or xlsx.")
    sheets = []
    for kind in KINDS:
        if kind in kinds:
            dataset = RESOURCES[kind](connection=connection).export()
            dataset.title = kind
            sheets.append(dataset)
    if file_format == "xlsx":
        return _workbook(sheets)
    # One CSV for all kinds: kind and connection first, each kind's own columns, the common ones last.
    common = ("effective_from", "effective_to", "enabled", "notes")
    headers: list[str] = ["kind", "connection"]
    for sheet in sheets:
        headers.extend(h for h in sheet.headers if h not in headers and h not in common)
    headers.extend(common)
    combined = tablib.Dataset(headers=headers)
    for sheet in sheets:
        for row in sheet.dict:
            combined.append([_cell(row.get(h, "")) for h in headers])
    return combined.export("csv").encode("utf-8")
