"""Reconciliation: did every Commerce sale reach Fusion, for the right amount? For one connection and a range of
days (in the connection's time zone), the Commerce documents its posting policy posts (orders or invoices, plus
credit memos) against Fusion's receivablesInvoices and receivablesCreditMemos: counts and amounts by day and
currency, documents missing on either side, amounts that differ, and Fusion documents that duplicate one Commerce
document. Both sides are read page by page and streamed through `reconciliation_match.Reconciler`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from commerce.client import CommerceClient
from commerce.search import MAX_PAGE_SIZE, SearchCriteria
from connector.models import Connection, Record
from core.errors import ConnectorError, PermanentError
from fusion.client import FusionApi
from fusion.invoices import CREDIT_MEMOS, INVOICES
from fusion.query import q_expr
from fusion.throttle import paced_client

from ..models import ReconciliationDifference, ReconciliationRun
from .reconciliation_match import (
    CREDIT_MEMO,
    INVOICE,
    ORDER,
    CommerceDoc,
    Difference,
    FusionDoc,
    Reconciler,
    fusion_number_for,
)

logger = logging.getLogger(__name__)

ACTOR = "system:reconciliation"
MAX_DAYS = 93  # a quarter: a longer range is several runs
FUSION_PAGE_SIZE = 500  # Fusion's largest page
COMMERCE_PAGE_SIZE = MAX_PAGE_SIZE
COMMERCE_SEARCH = {ORDER: "orders", INVOICE: "invoices", CREDIT_MEMO: "creditmemos"}
# The currency attribute of each Receivables resource; EnteredAmount is the document total (fusion.md §11.5).
FUSION_CURRENCY = {INVOICES: "InvoiceCurrencyCode", CREDIT_MEMOS: "CreditMemoCurrency"}
FUSION_AMOUNT = "EnteredAmount"
SAVE_BATCH = 500
# The daily run waits this long into the local day, so that the documents of yesterday's last minutes (webhooks
# retried, records waiting on their order) have reached Fusion before they are looked for.
DAILY_AFTER = time(2, 0)

Progress = Callable[[int], None]


class ReconciliationInputError(ValueError):
    """A range or connection that cannot be reconciled, said in words for the person who asked."""


# --- the two sides ---------------------------------------------------------------------------------------------


def _zone(connection: Connection) -> ZoneInfo:
    try:
        return ZoneInfo(connection.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def utc_bounds(connection: Connection, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The first local day's midnight and the midnight after the last local day, in UTC."""
    zone = _zone(connection)
    start = datetime.combine(date_from, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def commerce_kinds(connection: Connection) -> tuple[str, ...]:
    """What the posting policy posts: orders, or Commerce invoices; credit memos always."""
    billed = INVOICE if connection.invoice_event == Connection.InvoiceEvent.INVOICE else ORDER
    return (billed, CREDIT_MEMO)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PermanentError(f"{what} is not an amount: {str(value)[:40]!r}") from None


def commerce_doc(kind: str, entity: Mapping[str, Any], zone: ZoneInfo) -> CommerceDoc:
    """The little reconciliation needs of one Commerce search item."""
    number = str(entity.get("increment_id") or entity.get("entity_id") or "")
    created = str(entity.get("created_at") or "")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"Commerce {kind} {number} has no readable created_at ({created[:40]!r})") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # Commerce answers UTC without a zone
    currency = str(entity.get("order_currency_code") or entity.get("base_currency_code") or "").upper()
    total = _decimal(entity.get("grand_total"), f"The grand total of Commerce {kind} {number}")
    return CommerceDoc(kind, number, moment.astimezone(zone).date(), currency, -total if kind == CREDIT_MEMO else total)


def commerce_documents(
    client: CommerceClient, connection: Connection, date_from: date, date_to: date, *, page_size: int | None = None
) -> Iterator[CommerceDoc]:
    """Every document the policy posts, created in the range (UTC bounds of the local days), page by page:
    oldest first, by created_at then entity_id, which a past range never reorders."""
    start, end = utc_bounds(connection, date_from, date_to)
    zone = _zone(connection)
    for kind in commerce_kinds(connection):
        criteria = (
            SearchCriteria(page_size=page_size or COMMERCE_PAGE_SIZE)
            .where("created_at", start, "gteq")
            .where("created_at", end, "lt")
            .order_by("created_at")
            .order_by("entity_id")
        )
        for entity in client.iter_search(COMMERCE_SEARCH[kind], criteria):
            yield commerce_doc(kind, entity, zone)


def fusion_doc(resource: str, row: Mapping[str, Any]) -> FusionDoc:
    number = str(row.get("TransactionNumber") or "")
    amount = row.get(FUSION_AMOUNT)
    if amount in (None, ""):
        raise PermanentError(f"Fusion answered {resource} {number} without {FUSION_AMOUNT}")
    try:
        day = date.fromisoformat(str(row.get("TransactionDate") or "")[:10])
    except ValueError:
        raise PermanentError(f"Fusion answered {resource} {number} without a TransactionDate") from None
    currency = str(row.get(FUSION_CURRENCY[resource]) or "").upper()
    return FusionDoc(resource, number, day, currency, _decimal(amount, f"{FUSION_AMOUNT} of {number}"))


def fusion_documents(
    client: FusionApi, connection: Connection, date_from: date, date_to: date, *, page_size: int | None = None
) -> Iterator[FusionDoc]:
    """Fusion's invoices and credit memos dated in the range whose number carries the connection's prefix (in any
    transaction source and business unit: a duplicate may sit in another), by CustomerTransactionId."""
    for resource in (INVOICES, CREDIT_MEMOS):
        clauses: list[tuple[str, str, Any]] = [("TransactionDate", ">=", date_from), ("TransactionDate", "<=", date_to)]
        if connection.transaction_number_prefix:
            clauses.append(("TransactionNumber", "like", f"{connection.transaction_number_prefix}%"))
        fields = f"CustomerTransactionId,TransactionNumber,TransactionDate,{FUSION_CURRENCY[resource]},{FUSION_AMOUNT}"
        rows = client.iter_items(
            resource,
            q=q_expr(*clauses),
            order_by="CustomerTransactionId",
            fields=fields,
            page_size=page_size or FUSION_PAGE_SIZE,
        )
        for row in rows:
            yield fusion_doc(resource, row)


def fusion_aliases(connection: Connection, date_from: date, date_to: date) -> dict[str, str]:
    """Fusion numbers the connector posted a document under other than the one it is expected under (a source
    that numbers documents itself, identities from before a mappings change): Fusion number -> expected number.
    Only those exceptions are held, read from the records in the range (a day's margin for the time zone)."""
    start, end = utc_bounds(connection, date_from, date_to)
    prefix = connection.transaction_number_prefix
    aliases: dict[str, str] = {}
    rows = (
        Record.objects.filter(
            connection=connection,
            document_date__gte=start - timedelta(days=1),
            document_date__lt=end + timedelta(days=1),
        )
        .exclude(fusion_transaction_number="", posting_identities=[])
        .values_list("kind", "commerce_number", "fusion_transaction_number", "posting_identities")
    )
    for kind, number, fusion_number, identities in rows.iterator(chunk_size=2000):
        expected = fusion_number_for(kind, number, prefix)
        for posted in {fusion_number, *(i.get("number", "") for i in identities or [])}:
            if posted and posted != expected:
                aliases[posted] = expected
    return aliases


# --- the run ---------------------------------------------------------------------------------------------------


def reconciliation_range_check(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise ReconciliationInputError(f"The range starts ({date_from}) after it ends ({date_to}).")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ReconciliationInputError(f"A run covers at most {MAX_DAYS} days; split the range into several runs.")


def reconciliation_start(*, connection: Connection, date_from: date, date_to: date, actor: Any) -> ReconciliationRun:
    """A run waiting to be executed (by `reconciliation_execute`, in a worker or a command)."""
    reconciliation_range_check(date_from, date_to)
    return ReconciliationRun.objects.create(
        connection=connection, date_from=date_from, date_to=date_to, requested_by=str(actor)[:150]
    )


def _counted(items: Iterable[Any], progress: Progress | None, every: int = 500) -> Iterator[Any]:
    pending = 0
    for item in items:
        yield item
        pending += 1
        if progress is not None and pending >= every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)


def reconcile(
    *,
    connection: Connection,
    date_from: date,
    date_to: date,
    commerce: Iterable[CommerceDoc],
    fusion: Iterable[FusionDoc],
    aliases: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> Reconciler:
    """Compare the two streams (Commerce first, held compactly; Fusion streamed past it)."""
    reconciler = Reconciler(prefix=connection.transaction_number_prefix, aliases=dict(aliases or {}))
    for doc in _counted(commerce, progress):
        reconciler.add_commerce(doc)
    for fdoc in _counted(fusion, progress):
        reconciler.add_fusion(fdoc)
    reconciler.finish()
    return reconciler


def reconciliation_execute(
    *,
    run: ReconciliationRun,
    commerce: Iterable[CommerceDoc] | None = None,
    fusion: Iterable[FusionDoc] | None = None,
    progress: Progress | None = None,
) -> ReconciliationRun:
    """Read both sides, compare, store the result. A failure of either system (or unreadable data) ends the run
    as failed with the reason; nothing is raised."""
    connection = run.connection
    try:
        if commerce is None:
            commerce = commerce_documents(
                CommerceClient.for_connection(connection), connection, run.date_from, run.date_to
            )
        if fusion is None:
            fusion = fusion_documents(paced_client(connection), connection, run.date_from, run.date_to)
        result = reconcile(
            connection=connection,
            date_from=run.date_from,
            date_to=run.date_to,
            commerce=commerce,
            fusion=fusion,
            aliases=fusion_aliases(connection, run.date_from, run.date_to),
            progress=progress,
        )
    except ConnectorError as exc:
        return _fail(run, str(exc.message))
    except Exception as exc:  # a defect or an answer nobody expected: the run says so, the worker goes on
        logger.exception("Reconciliation run %s failed", run.pk, extra={"connection_id": connection.pk})
        return _fail(run, f"Unexpected error: {type(exc).__name__}: {exc}"[:2000])
    return _store(run, result)


def _fail(run: ReconciliationRun, reason: str) -> ReconciliationRun:
    with transaction.atomic():
        run.status = ReconciliationRun.Status.FAILED
        run.error = reason
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        audit_record(
            action="reconciliation.failed",
            actor=ACTOR,
            connection=run.connection_id,
            target=run,
            outcome=AuditEvent.Outcome.FAILURE,
            message=f"Reconciliation {run.date_from}..{run.date_to} failed: {reason}",
        )
    return run


def _records_for(connection: Connection, differences: list[Difference]) -> list[int | None]:
    """The record each difference concerns, when the connector has one: by Commerce number and kind, else by
    the Fusion number it posted."""
    numbers = {d.commerce_number for d in differences if d.commerce_number}
    fusion_numbers = {n for d in differences if not d.commerce_number for n in d.fusion_numbers}
    by_number: dict[tuple[str, str], int] = {}
    by_fusion: dict[str, int] = {}
    if numbers or fusion_numbers:
        rows = Record.objects.filter(
            Q(commerce_number__in=numbers) | Q(fusion_transaction_number__in=fusion_numbers), connection=connection
        ).values_list("pk", "kind", "commerce_number", "fusion_transaction_number")
        for pk, kind, number, fusion_number in rows:
            by_number.setdefault((kind, number), pk)
            if fusion_number:
                by_fusion.setdefault(fusion_number, pk)
    return [
        by_number.get((d.commerce_kind, d.commerce_number))
        if d.commerce_number
        else next((by_fusion[n] for n in d.fusion_numbers if n in by_fusion), None)
        for d in differences
    ]


def _store(run: ReconciliationRun, result: Reconciler) -> ReconciliationRun:
    differences = result.differences
    with transaction.atomic():
        for start in range(0, len(differences), SAVE_BATCH):
            batch = differences[start : start + SAVE_BATCH]
            records = _records_for(run.connection, batch)
            ReconciliationDifference.objects.bulk_create(
                ReconciliationDifference(
                    run=run,
                    kind=d.kind,
                    day=d.day,
                    commerce_kind=d.commerce_kind,
                    commerce_number=d.commerce_number,
                    fusion_numbers=", ".join(d.fusion_numbers)[:400],
                    currency=d.currency,
                    commerce_amount=d.commerce_amount,
                    fusion_amount=d.fusion_amount,
                    difference=d.difference,
                    record_id=record,
                )
                for d, record in zip(batch, records, strict=True)
            )
        run.status = ReconciliationRun.Status.DIFFERENCES if differences else ReconciliationRun.Status.OK
        run.commerce_count = result.commerce_count
        run.fusion_count = result.fusion_count
        run.matched_count = result.matched_count
        run.difference_count = len(differences)
        run.daily = result.daily()
        run.error = ""
        run.finished_at = timezone.now()
        run.save()
        audit_record(
            action="reconciliation.finished",
            actor=ACTOR,
            connection=run.connection_id,
            target=run,
            outcome=AuditEvent.Outcome.SUCCESS if not differences else AuditEvent.Outcome.INFO,
            message=f"Reconciliation {run.date_from}..{run.date_to}: {result.commerce_count} Commerce and "
            f"{result.fusion_count} Fusion documents, {len(differences)} differences",
            data={"totals": {c: [str(a), str(b)] for c, (a, b) in result.totals_by_currency().items()}},
        )
    return run


def reconciliation_run(
    *,
    connection: Connection,
    date_from: date,
    date_to: date,
    actor: Any = ACTOR,
    progress: Progress | None = None,
) -> ReconciliationRun:
    """Start and execute a run at once (the command and the daily schedule)."""
    run = reconciliation_start(connection=connection, date_from=date_from, date_to=date_to, actor=actor)
    return reconciliation_execute(run=run, progress=progress)


def reconciliation_daily(*, connection_id: int, now: datetime | None = None) -> int | None:
    """Yesterday (in the connection's time zone) for one enabled connection, once it is past DAILY_AFTER there;
    the run's id, or None when there is nothing to do (connection gone or disabled, too early, or yesterday
    already reconciled without failure)."""
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return None
    local = (now or timezone.now()).astimezone(_zone(connection))
    if local.time() < DAILY_AFTER:
        return None
    yesterday = local.date() - timedelta(days=1)
    done = ReconciliationRun.objects.filter(
        connection=connection, date_from=yesterday, date_to=yesterday, finished_at__isnull=False
    ).exclude(status=ReconciliationRun.Status.FAILED)
    if done.exists():
        return None
    return reconciliation_run(connection=connection, date_from=yesterday, date_to=yesterday).pk


# --- selectors ---------------------------------------------------------------------------------------------------


def latest_reconciliation(connection: Connection) -> ReconciliationRun | None:
    """The newest finished reconciliation run of `connection` (ok, differences or failed), or None when it has
    none. The run carries `differences_total`, its number of stored differences (equal to `difference_count`),
    for the dashboard to show next to its status, range and finished_at."""
    return (
        ReconciliationRun.objects.filter(connection=connection, finished_at__isnull=False)
        .annotate(differences_total=Count("differences"))
        .order_by("-finished_at", "-pk")
        .first()
    )
