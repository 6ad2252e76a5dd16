"""Mapping services: audited rule changes, the posting plan of a record, plan (de)serialisation and preview,
and CSV/XLSX import and export of the rules.

The admin, the import (admin and command line) and anything else that changes a rule go through rule_save /
rule_delete, so every change is validated and audited with its before and after values."""

from __future__ import annotations

import dataclasses
import io
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import tablib
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string

from audit.services import audit_record
from connector.documents import SalesDocument
from connector.models import Connection, Record

from . import rules
from .models import RULE_MODELS, AccountTemplate, CustomerRule, ProductRule, RuleBase, SegmentLayout, StoreRule

KINDS = tuple(RULE_MODELS)  # layout, template, store, customer, product: the order files are imported in
FORMATS = ("csv", "xlsx")


# --------------------------------------------------------------------------------------------------------------
# Rule changes, audited
# --------------------------------------------------------------------------------------------------------------


def _describe(rule: RuleBase) -> str:
    return f"{rule._meta.verbose_name} {rule}"


def rule_save(*, rule: RuleBase, actor: Any, via: str = "admin") -> RuleBase:
    """Validate and save a rule; audit the change with the values before and after. Saving an unchanged rule
    does nothing and writes no audit event."""
    model = type(rule)
    with transaction.atomic():
        current = model._default_manager.select_for_update().filter(pk=rule.pk).first() if rule.pk else None
        before = current.audit_values() if current is not None else None
        rule.full_clean()
        after = rule.audit_values()
        if before == after:
            return rule
        rule.save()
        changed = sorted(name for name in after if before is None or before.get(name) != after[name])
        verb = "created" if before is None else "updated"
        audit_record(
            action=f"mappings.{model.KIND}.{verb}",
            actor=actor,
            connection=rule.connection_id,
            target=rule,
            message=f"{_describe(rule)} {verb} ({via}); changed: {', '.join(changed)}",
            data={"kind": model.KIND, "via": via, "changed": changed, "before": before, "after": after},
        )
    return rule


def rule_delete(*, rule: RuleBase, actor: Any, via: str = "admin") -> None:
    model = type(rule)
    with transaction.atomic():
        before = rule.audit_values()
        rule_id, description = rule.pk, _describe(rule)
        rule.delete()
        audit_record(
            action=f"mappings.{model.KIND}.deleted",
            actor=actor,
            connection=rule.connection_id,
            target_type=model._meta.label_lower,
            target_id=rule_id,
            message=f"{description} deleted ({via})",
            data={"kind": model.KIND, "via": via, "before": before, "after": None},
        )


# --------------------------------------------------------------------------------------------------------------
# Snapshots and the posting plan
# --------------------------------------------------------------------------------------------------------------


def _dates(rule: RuleBase) -> dict[str, Any]:
    return {
        "effective_from": rule.effective_from,
        "effective_to": rule.effective_to,
        "enabled": rule.enabled,
        "rule_id": rule.pk,
    }


def rules_snapshot(*, connection: Connection) -> rules.RuleSet:
    """The connection's enabled rules as the resolver's frozen snapshots (the resolver picks those effective
    on the document date)."""

    def enabled(model: type[RuleBase]):
        return model._default_manager.filter(connection=connection, enabled=True).order_by("pk")

    return rules.RuleSet(
        customers=tuple(
            rules.CustomerRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                bill_to_customer_number=r.bill_to_customer_number,
                bill_to_site=r.bill_to_site,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(CustomerRule)
        ),
        products=tuple(
            rules.ProductRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                item_number=r.item_number,
                memo_line=r.memo_line,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(ProductRule)
        ),
        stores=tuple(
            rules.StoreRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                business_unit=r.business_unit,
                transaction_source=r.transaction_source,
                transaction_type=r.transaction_type,
                credit_memo_transaction_type=r.credit_memo_transaction_type,
                currency_mode=r.currency_mode,
                conversion_rate_type=r.conversion_rate_type,
                ledger_currency=r.ledger_currency,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(StoreRule)
        ),
        templates=tuple(
            rules.AccountTemplateData(
                account_class=r.account_class,
                combination=r.combination,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(AccountTemplate)
        ),
        layouts=tuple(
            rules.SegmentLayoutData(
                segment_names=r.names,
                delimiter=r.delimiter,
                winners=dict(r.winners or {}),
                **_dates(r),
            )
            for r in enabled(SegmentLayout)
        ),
    )


# Match types whose data Commerce's sales payloads do not carry.
STORE_FACT_MATCH_TYPES = ("website", "store_code")
PRODUCT_FACT_MATCH_TYPES = ("category", "attribute_set")


def rules_need(connection: Connection) -> set[str]:
    """Which of website, store_code, category and attribute_set the connection's enabled rules match on: the
    facts worth asking Commerce for (an empty set: ask nothing)."""
    stores = StoreRule.objects.filter(connection=connection, enabled=True, match_type__in=STORE_FACT_MATCH_TYPES)
    products = ProductRule.objects.filter(connection=connection, enabled=True, match_type__in=PRODUCT_FACT_MATCH_TYPES)
    need: set[str] = set()
    for query in (stores, products):
        need.update(query.order_by().values_list("match_type", flat=True).distinct())
    return need


def connection_defaults(connection: Connection) -> rules.ConnectionDefaults:
    return rules.ConnectionDefaults(
        slug=connection.slug,
        business_unit=connection.business_unit,
        transaction_source=connection.transaction_source,
        transaction_type=connection.transaction_type,
        credit_memo_transaction_type=connection.credit_memo_transaction_type,
        payment_terms=connection.payment_terms,
        ledger_currency=connection.currency,
        time_zone=connection.time_zone,
        transaction_number_prefix=connection.transaction_number_prefix,
        discount_mode=connection.discount_mode,
        distributions=connection.fusion_distributions,
        journal_mode=connection.journal_mode,
        invoice_event=connection.invoice_event,
    )


def _original_invoice_number(record: Record, document: SalesDocument) -> str:
    """The Fusion number of the AR invoice a credit memo credits, when that invoice was posted by us."""
    if record.kind != Record.Kind.CREDIT_MEMO or not document.order_entity_id:
        return ""
    connection = record.connection
    if connection.invoice_event == Connection.InvoiceEvent.ORDER:
        query = Q(kind=Record.Kind.ORDER, commerce_entity_id=document.order_entity_id)
    else:
        # Partial invoicing: the document does not say which Commerce invoice is refunded; the first posted
        # invoice of the order is the reference (on-account credit memos only name it).
        query = Q(kind=Record.Kind.INVOICE, commerce_order_id=document.order_entity_id)
    posted = (
        Record.objects.filter(query, connection=connection)
        .exclude(fusion_transaction_number="")
        .order_by("posted_at", "pk")
        .first()
    )
    return posted.fusion_transaction_number if posted is not None else ""


def order_of(record: Record) -> SalesDocument | None:
    """The order an invoice or credit memo belongs to, as its record holds it (None when not received)."""
    if record.kind == Record.Kind.ORDER or not record.commerce_order_id:
        return None
    order = (
        Record.objects.filter(
            connection=record.connection_id, kind=Record.Kind.ORDER, commerce_entity_id=record.commerce_order_id
        )
        .only("document")
        .first()
    )
    return SalesDocument.from_json(order.document) if order is not None else None


def with_order_context(document: SalesDocument, order: SalesDocument | None) -> SalesDocument:
    """Commerce invoices and credit memos carry no customer, store or PO of their own: take them from their
    order, so they bill the same customer account the order would."""
    if order is None or document.kind == Record.Kind.ORDER:
        return document
    customer = document.customer
    if not customer.commerce_id and not customer.email:
        customer = order.customer
    return dataclasses.replace(
        document,
        customer=customer,
        store_id=document.store_id or order.store_id,
        website_id=document.website_id or order.website_id,
        store_code=document.store_code or order.store_code,
        purchase_order_number=document.purchase_order_number or order.purchase_order_number,
    )


def plan_for_record(
    record: Record, *, order: SalesDocument | None = None, document: SalesDocument | None = None
) -> rules.PostingPlan:
    """Resolve the record's document (or `document`, the same one enriched) against the connection's rules as
    they are now. Sends nothing. An invoice or credit memo takes its customer and store from its order (`order`,
    else the order's record)."""
    if document is None:
        document = SalesDocument.from_json(record.document)
    document = with_order_context(document, order or order_of(record))
    connection = record.connection
    return rules.resolve(
        document,
        rules_snapshot(connection=connection),
        connection_defaults(connection),
        original_invoice_number=_original_invoice_number(record, document),
    )


# --------------------------------------------------------------------------------------------------------------
# Plan <-> JSON (money as strings, dates as ISO)
# --------------------------------------------------------------------------------------------------------------


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
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _build(hints[k], v) for k, v in value.items() if k in names})
    if kind is Decimal:
        return Decimal(value)
    if kind is date:
        return date.fromisoformat(value)
    return value


def plan_from_json(data: Mapping[str, Any]) -> rules.PostingPlan:
    return _build(rules.PostingPlan, data)


# --------------------------------------------------------------------------------------------------------------
# Preview
# --------------------------------------------------------------------------------------------------------------


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


def record_plan_preview(record: Record) -> str:
    """Resolve the record with the current rules and render it; nothing is stored or sent."""
    return plan_preview_html(plan_for_record(record))


# --------------------------------------------------------------------------------------------------------------
# Import and export (CSV, XLSX)
# --------------------------------------------------------------------------------------------------------------


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


def rules_import(
    *,
    content: bytes,
    file_format: str,
    actor: Any,
    connection: Connection | None = None,
    kind: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import rule rows from a CSV or XLSX file: all of them, or none. Rows are checked in one transaction
    (layout, templates, stores, customers, products in that order, so later rows see earlier ones); any row
    error rolls everything back and is reported with its line. A dry run always rolls back.

    With `connection`, rows may leave the connection column empty and must not name another one."""
    from .resources import RESOURCES

    tables, issues = _read(content, file_format, kind)
    report = ImportReport(dry_run=dry_run, issues=issues)
    with transaction.atomic():
        for table_kind in KINDS:
            table = tables.get(table_kind)
            if table is None:
                continue
            resource = RESOURCES[table_kind](connection=connection, actor=actor)
            headers = sorted({h for row in table.rows for h in row})
            dataset = tablib.Dataset(headers=headers)
            for row in table.rows:
                dataset.append([row.get(h, "") for h in headers])
            result = resource.import_data(
                dataset,
                dry_run=False,
                raise_errors=False,
                use_transactions=True,
                rollback_on_validation_errors=True,
                user=actor,
            )
            counts = report.counts.setdefault(table_kind, {})
            for row_result in result.rows:
                counts[row_result.import_type] = counts.get(row_result.import_type, 0) + 1
            for number, errors in result.row_errors():
                where = table.where[number - 1]
                report.issues.append(RowIssue(table_kind, where, [_row_messages(e.error)[0] for e in errors]))
            for invalid in result.invalid_rows:
                where = table.where[invalid.number - 1]
                report.issues.append(RowIssue(table_kind, where, _row_messages(invalid.error)))
            for error in result.base_errors:
                report.issues.append(RowIssue(table_kind, "file", [str(error.error)]))
        report.applied = report.ok and not dry_run
        if not report.applied:
            transaction.set_rollback(True)
    return report


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
    from .resources import RESOURCES

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
