"""Reconciliation: did every Commerce sale reach Fusion, for the right amount? For one connection and a range of
days (in the connection's time zone), the Commerce documents its posting policy posts (orders or invoices, plus
credit memos) against Fusion's receivablesInvoices and receivablesCreditMemos: counts and amounts by day and
currency, documents missing on either side, amounts that differ, and Fusion documents that duplicate one Commerce
document. Both sides are read page by page and streamed through `reconciliation_match.Reconciler`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from commerce.client import CommerceClient
from connector.models import Connection, Record
from core.errors import ConnectorError
from fusion.throttle import paced_client

from ..models import ReconciliationDifference, ReconciliationRun
from .reconciliation_match import CommerceDoc, Difference, FusionDoc, Reconciler
from .reconciliation_sources import commerce_documents, fusion_aliases, fusion_documents, local_zone

logger = logging.getLogger(__name__)

ACTOR = "system:reconciliation"
MAX_DAYS = 93  # a quarter: a longer range is several runs
SAVE_BATCH = 500
# The daily run waits this long into the local day, so that the documents of yesterday's last minutes (webhooks
# retried, records waiting on their order) have reached Fusion before they are looked for.
DAILY_AFTER = time(2, 0)

Progress = Callable[[int], None]


class ReconciliationInputError(ValueError):
    """A range or connection that cannot be reconciled, said in words for the person who asked."""


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
    prefix = connection.transaction_number_prefix
    try:
        aliases = fusion_aliases(connection, run.date_from, run.date_to)
        if commerce is None:
            commerce = commerce_documents(
                CommerceClient.for_connection(connection), connection, run.date_from, run.date_to
            )
        if fusion is None:
            fusion = fusion_documents(
                paced_client(connection),
                connection,
                run.date_from,
                run.date_to,
                also_numbers=[n for n in aliases if prefix and not n.startswith(prefix)],
            )
        result = reconcile(
            connection=connection,
            date_from=run.date_from,
            date_to=run.date_to,
            commerce=commerce,
            fusion=fusion,
            aliases=aliases,
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
    local = (now or timezone.now()).astimezone(local_zone(connection))
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
