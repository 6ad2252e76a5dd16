"""Record lifecycle services: accept, claim under a lease, retry with backoff, park for review, replay.
Each state change writes its audit event in the same transaction."""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record

from .documents import SalesDocument
from .models import Connection, Record

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def backoff_delay(*, attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1)))."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(0, ceiling)


@dataclass(frozen=True)
class Accepted:
    record: Record
    created: bool


def record_accept(
    *,
    connection: Connection,
    document: SalesDocument,
    source: str = Record.Source.WEBHOOK,
    actor: Any = "system:webhook",
    correlation_id: str = "",
) -> Accepted:
    """Create the record for (connection, kind, entity) or attach to the existing one. Must be called inside
    the caller's transaction; the caller wakes a worker on commit when `created`."""
    defaults = {
        "commerce_number": document.increment_id,
        "commerce_order_id": document.order_entity_id,
        "source": source,
        "document": document.to_json(),
        "document_date": document.created_at,
        "grand_total": document.grand_total,
        "currency": document.currency,
    }
    try:
        with transaction.atomic():
            record, created = Record.objects.get_or_create(
                connection=connection,
                kind=document.kind,
                commerce_entity_id=document.entity_id,
                defaults=defaults,
            )
    except IntegrityError:  # a concurrent delivery of the same document won the insert
        record, created = (
            Record.objects.get(connection=connection, kind=document.kind, commerce_entity_id=document.entity_id),
            False,
        )
    audit_record(
        action="record.received" if created else "record.duplicate",
        actor=actor,
        connection=connection,
        target=record,
        outcome=AuditEvent.Outcome.SUCCESS if created else AuditEvent.Outcome.INFO,
        message=(
            f"{document.kind} {document.increment_id} received via {source}"
            if created
            else f"{document.kind} {document.increment_id} already known; nothing new created"
        ),
        data={"source": source, "grand_total": str(document.grand_total), "currency": document.currency},
        correlation_id=correlation_id,
    )
    return Accepted(record=record, created=created)


def record_claim(*, record_id: int, worker: str = WORKER_ID, now: datetime | None = None) -> Record | None:
    """Take the record's lease if it is due and nobody holds it. Returns None when there is nothing to do
    (already done, not due, or another worker holds it). One worker at a time per record."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.CONNECTOR_LEASE_SECONDS)
    with transaction.atomic():
        qs = Record.objects.filter(pk=record_id, state__in=Record.ACTIVE_STATES, next_attempt_at__lte=now)
        qs = qs.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        if connection_supports_skip_locked():
            qs = qs.select_for_update(skip_locked=True)
        record = qs.select_related("connection").first()
        if record is None:
            return None
        updated = (
            Record.objects.filter(pk=record.pk)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + lease, leased_by=worker[:100])
        )
        if not updated:
            return None
    record.lease_until = now + lease
    record.leased_by = worker[:100]
    return record


def connection_supports_skip_locked() -> bool:
    from django.db import connection

    return connection.features.has_select_for_update_skip_locked


def record_release(*, record: Record) -> None:
    Record.objects.filter(pk=record.pk, leased_by=record.leased_by).update(lease_until=None, leased_by="")
    record.lease_until, record.leased_by = None, ""


def record_retry_later(
    *, record: Record, error: Exception, actor: str = "system:worker", now: datetime | None = None
) -> Record:
    """A transient failure: count the attempt and schedule the next one, or park when attempts run out."""
    now = now or timezone.now()
    conn = record.connection
    attempts = record.attempts + 1
    if attempts >= conn.retry_max_attempts:
        return record_park(
            record=record,
            reason=f"Gave up after {attempts} attempts. Last error: {error}",
            hint="Resolution: check that Fusion is reachable and healthy, then replay the record.",
            actor=actor,
            attempts=attempts,
            error=error,
        )
    delay = backoff_delay(attempt=attempts, base=conn.retry_base_seconds, cap=conn.retry_cap_seconds)
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        delay = max(delay, float(retry_after))
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.RETRYING if record.state == Record.State.RECEIVED else record.state,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=str(error)[:4000],
            lease_until=None,
            leased_by="",
        )
        audit_record(
            action="record.retry_scheduled",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.RETRY,
            message=f"Attempt {attempts} failed; next attempt in {delay:.0f} s",
            data=_error_data(error) | {"attempt": attempts, "delay_seconds": round(delay, 1)},
        )
    record.refresh_from_db()
    return record


def record_park(
    *,
    record: Record,
    reason: str,
    hint: str,
    actor: str = "system:worker",
    attempts: int | None = None,
    error: Exception | None = None,
) -> Record:
    """Park the record as NEEDS REVIEW with the reason and what to do about it."""
    if not hint.startswith("Resolution:"):
        hint = f"Resolution: {hint}"
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.NEEDS_REVIEW,
            last_error=reason[:4000],
            resolution_hint=hint[:2000],
            lease_until=None,
            leased_by="",
            attempts=attempts if attempts is not None else record.attempts,
        )
        audit_record(
            action="record.needs_review",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.FAILURE,
            message=reason,
            data=(_error_data(error) if error else {}) | {"hint": hint},
        )
    record.refresh_from_db()
    return record


def record_replay(*, record: Record, actor: Any, reason: str = "") -> Record:
    """Put a parked (or ignored) record back in line; the step that failed runs again with current mappings."""
    with transaction.atomic():
        locked = Record.objects.select_for_update().get(pk=record.pk)
        if locked.state not in (Record.State.NEEDS_REVIEW, Record.State.IGNORED, Record.State.RETRYING):
            raise ValueError(
                f"Only records needing review, ignored or waiting to retry can be replayed "
                f"(this one is {locked.get_state_display().lower()})."
            )
        resume = Record.State.INVOICE_POSTED if locked.fusion_transaction_id else Record.State.RECEIVED
        Record.objects.filter(pk=locked.pk).update(
            state=resume,
            attempts=0,
            next_attempt_at=timezone.now(),
            lease_until=None,
            leased_by="",
            resolution_hint="",
        )
        audit_record(
            action="record.replayed",
            actor=actor,
            connection=locked.connection_id,
            target=locked,
            message=reason or "Replay requested",
            data={"from_state": locked.state, "reason": reason},
        )
        transaction.on_commit(lambda: record_wake(record_id=locked.pk))
    record.refresh_from_db()
    return record


def record_ignore(*, record: Record, actor: Any, reason: str) -> Record:
    if not reason.strip():
        raise ValueError("Say why the record is ignored.")
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(state=Record.State.IGNORED, lease_until=None, leased_by="")
        audit_record(
            action="record.ignored",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.INFO,
            message=reason,
            data={"from_state": record.state},
        )
    record.refresh_from_db()
    return record


def record_wake(*, record_id: int) -> None:
    """Send a wake-up to a worker. Losing it is harmless: the relay finds due records in Postgres."""
    import logging

    from .tasks import process_record

    try:
        process_record.apply_async(args=[record_id], retry=False)
    except Exception:  # broker down: the relay will pick the record up
        logging.getLogger(__name__).warning(
            "Broker unavailable; record %s waits for the relay", record_id, extra={"record_id": record_id}
        )


def _error_data(error: Exception | None) -> dict:
    if error is None:
        return {}
    as_dict = getattr(error, "as_dict", None)
    return as_dict() if callable(as_dict) else {"error": type(error).__name__, "message": str(error)}
