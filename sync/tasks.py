"""Thin Celery doors: ids in, one service call, safe to run twice. Task names are the wire protocol (stored beat
schedules and queued messages name them), so they keep the names they were first published under."""

from __future__ import annotations

import logging
import time

from celery import Task, shared_task
from django.conf import settings

from commerce.backfill import backfill_run
from commerce.deliveries import deliveries_purge, deliveries_record, deliveries_unread_record
from connector.models import Connection
from connector.wakeups import record_wake, records_wake
from core.errors import ConnectorError
from core.locks import single_run
from fusion.journals import journals_ship
from fusion.reference import reference_refresh
from fusion.throttle import paced_client
from mappings.selectors import segment_layout_on

from . import relay
from .flows.fusion_runs import AlreadyRunning, NotConfigured, StopRun, fusion_sync_run
from .flows.reconciliation import reconciliation_daily, reconciliation_execute
from .flows.sales_documents import record_process
from .models import ReconciliationRun

logger = logging.getLogger(__name__)

BACKFILL_LOCK_SECONDS = 600
SHIP_LOCK_SECONDS = 600
RECONCILE_LOCK_SECONDS = 3 * 3600


def fan_out_per_connection(task: Task) -> int:
    """Beat's fan-out: send `task(connection_id)` once for every enabled connection, each on its own, so one slow
    or failing connection does not hold up the others. Returns how many were sent."""
    ids = list(Connection.objects.filter(enabled=True).values_list("pk", flat=True))
    for connection_id in ids:
        task.apply_async(args=[connection_id], retry=False)
    return len(ids)


@shared_task(name="connector.process_record", ignore_result=True)
def process_record(record_id: int) -> str:
    return record_process(record_id=record_id)


@shared_task(name="connector.wake_records", ignore_result=True)
def wake_records(record_ids: list[int]) -> int:
    """A batch of wake-ups from a web process, fanned out as one process_record message per record."""
    for record_id in record_ids:
        record_wake(record_id=record_id)
    return len(record_ids)


# A woken reader goes on with what else has arrived, this many at a time, for at most this long.
READ_BATCH = 25
READ_SECONDS = 5.0


@shared_task(name="commerce.delivery_record", ignore_result=True)
def read_deliveries(delivery_ids: list[int]) -> int:
    """Stored webhook deliveries (a batch from one web process's wake-up, or from the relay) read into records in
    one transaction, then whatever else is unread, a batch at a time for up to READ_SECONDS: a message is only a
    wake-up, and one awake reader takes what has arrived meanwhile instead of leaving it to a message each. The
    new records of each batch are woken once it is committed. Returns how many records were created. A delivery
    another worker read already, or is reading, is skipped."""
    relay.relay_deliveries_picked_up(delivery_ids=delivery_ids)
    created = _wake_created(deliveries_record(delivery_ids))
    until = time.monotonic() + READ_SECONDS
    while time.monotonic() < until:
        outcomes = deliveries_unread_record(limit=READ_BATCH)
        created += _wake_created(outcomes)
        if len(outcomes) < READ_BATCH:
            break
    return created


def _wake_created(outcomes: list) -> int:
    created = [o.record_id for o in outcomes if o.created and o.record_id is not None]
    if created:
        records_wake(record_ids=created)  # committed: the records exist for the worker that takes them
    return len(created)


@shared_task(name="connector.relay", ignore_result=True)
def relay_due_records() -> int:
    due = relay.relay_due(limit=relay.RELAY_PAGE * relay.RELAY_MAX_PAGES)
    return due + relay.relay_unread_deliveries(limit=500)


@shared_task(name="commerce.backfill_all", ignore_result=True)
def backfill_all() -> int:
    """Beat: one backfill task per enabled connection."""
    return fan_out_per_connection(backfill_connection)


@shared_task(name="commerce.backfill_connection", ignore_result=True)
def backfill_connection(connection_id: int) -> str:
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection missing or disabled"
    with single_run(f"commerce:backfill:{connection_id}", seconds=BACKFILL_LOCK_SECONDS) as mine:
        if not mine:  # the previous run is still going
            return "already running"
        try:
            result = backfill_run(connection=connection, actor="system:backfill")
        except ConnectorError as exc:  # audited by the service; the next beat tick tries again
            logger.warning("Backfill of %s failed: %s", connection.slug, exc, extra={"connection_id": connection_id})
            return f"failed: {type(exc).__name__}"
    return f"{result.created} new, {result.known} known, {result.unreadable} unreadable"


@shared_task(name="commerce.purge_bodies", ignore_result=True)
def purge_bodies() -> int:
    return deliveries_purge()


@shared_task(name="fusion.ship_journals", ignore_result=True)
def ship_journals() -> str:
    """Beat: close due batches, submit closed ones, follow running imports. One shipper at a time."""
    with single_run("fusion:ship-journals", seconds=SHIP_LOCK_SECONDS) as mine:
        if not mine:
            return "already running"
        counts = journals_ship()
    return f"{counts['closed']} closed, {counts['submitted']} submitted, {counts['polled']} polled"


@shared_task(name="fusion.refresh_reference_all", ignore_result=True)
def refresh_reference_all() -> int:
    """Beat: one reference refresh task per enabled connection."""
    return fan_out_per_connection(refresh_reference)


@shared_task(name="fusion.refresh_reference", ignore_result=True)
def refresh_reference(connection_id: int) -> str:
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection missing or disabled"
    names, delimiter = segment_layout_on(connection)
    try:
        counts = reference_refresh(
            connection=connection, client=paced_client(connection), segment_names=names, delimiter=delimiter
        )
    except ConnectorError as exc:
        logger.warning(
            "Reference refresh of %s failed: %s", connection.slug, exc, extra={"connection_id": connection_id}
        )
        return f"failed: {type(exc).__name__}"
    return f"{counts['sites']} sites, {counts['combinations']} combinations"


@shared_task(name="sync.fusion_sync", ignore_result=True, queue="sync")
def fusion_sync(connection_id: int, stream: str) -> str:
    """Beat, one periodic task per connection and stream: one run of the sync from Fusion. One run per connection
    and stream at a time (a lock); a run that stops keeps what it settled, the next carries on."""
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection missing or disabled"
    try:
        run = fusion_sync_run(
            connection=connection,
            stream=stream,
            actor="system:fusion-sync",
            max_seconds=settings.CONNECTOR_FUSION_SYNC_MAX_SECONDS,
        )
    except AlreadyRunning:
        return "already running"
    except NotConfigured as exc:
        return f"not configured: {exc.message}"
    except (ConnectorError, StopRun) as exc:  # recorded on the run row and audited by the service
        logger.warning(
            "Sync from Fusion of %s (%s) failed: %s",
            connection.slug,
            stream,
            exc,
            extra={"connection_id": connection_id},
        )
        return f"failed: {type(exc).__name__}"
    return run.counts.line()


@shared_task(name="sync.reconcile", ignore_result=True, queue="sync")
def reconcile(run_id: int) -> str:
    """A reconciliation run started from the admin. A run already finished (a message delivered twice) is left."""
    run = ReconciliationRun.objects.select_related("connection").filter(pk=run_id, finished_at__isnull=True).first()
    if run is None:
        return "already finished or gone"
    return reconciliation_execute(run=run).status


@shared_task(name="sync.reconcile_daily_all", ignore_result=True, queue="sync")
def reconcile_daily_all() -> int:
    return fan_out_per_connection(reconcile_daily)


@shared_task(name="sync.reconcile_daily", ignore_result=True, queue="sync")
def reconcile_daily(connection_id: int) -> str:
    """Yesterday's reconciliation for one connection; nothing when it already ran or is running now (a month's
    run can outlast the hour between two checks)."""
    with single_run(f"sync:reconcile-daily:{connection_id}", seconds=RECONCILE_LOCK_SECONDS) as mine:
        if not mine:
            return "already running"
        run_id = reconciliation_daily(connection_id=connection_id)
    return "nothing to do" if run_id is None else f"run {run_id}"
