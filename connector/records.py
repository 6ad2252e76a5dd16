"""Record services: accept a document, claim it under a lease, retry with backoff, park for review, move it on.
Each state change writes its audit event in the same transaction."""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record, audit_record_many
from core.errors import OutcomeUnknownError

from .documents import SalesDocument
from .models import UNREADABLE_PREFIX, Connection, Record

logger = logging.getLogger(__name__)


def lease_token() -> str:
    """Who holds a lease: host, process and a per-claim nonce (forked workers share their parent's pid
    at import time, and one process may claim the same record again after its lease ran out)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


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
    """Create the record for (connection, kind, entity) or attach to the existing one (the unique constraint
    decides, also between concurrent workers), with its audit event. The caller wakes a worker on commit when
    `created`."""
    fields = record_fields(connection=connection, document=document, source=source)
    record, created = _record_insert(connection, fields)
    event = record_received_event(document=document, source=source, created=created)
    audit_record(actor=actor, connection=connection, target=record, correlation_id=correlation_id, **event)
    return Accepted(record=record, created=created)


def record_accept_many(
    *,
    connection: Connection,
    documents: list[tuple[SalesDocument, str]],
    source: str = Record.Source.WEBHOOK,
    actor: str = "system:webhook",
) -> list[Accepted]:
    """record_accept for a batch of (document, correlation id) of one connection: one look-up of the documents
    already known, one INSERT of the new records and one of their audit events, in the caller's transaction.
    A document twice in the batch is a duplicate of its first. Raises IntegrityError when another transaction
    created one of them meanwhile (the caller then accepts them one by one)."""
    keys = {(document.kind, document.entity_id) for document, _ in documents}
    known = {
        (kind, entity_id): pk
        for kind, entity_id, pk in Record.objects.filter(
            connection_id=connection.pk, commerce_entity_id__in={entity_id for _, entity_id in keys}
        ).values_list("kind", "commerce_entity_id", "pk")
        if (kind, entity_id) in keys
    }
    new: dict[tuple[str, str], Record] = {}
    for document, _ in documents:
        key = (document.kind, document.entity_id)
        if key not in known and key not in new:
            new[key] = Record(**record_fields(connection=connection, document=document, source=source))
    if new:
        with transaction.atomic():
            Record.objects.bulk_create(list(new.values()))
    accepted, events, first = [], [], set()
    for document, correlation_id in documents:
        key = (document.kind, document.entity_id)
        created = key in new and key not in first
        first.add(key)
        record = new[key] if key in new else Record(pk=known[key], connection_id=connection.pk, kind=document.kind)
        record.connection = connection
        accepted.append(Accepted(record=record, created=created))
        event = record_received_event(document=document, source=source, created=created)
        events.append(
            {**event, "actor": actor, "connection": connection, "target": record, "correlation_id": correlation_id}
        )
    audit_record_many(events)
    return accepted


def record_unreadable(
    *,
    connection: Connection,
    kind: str | None,
    key: str,
    reason: str,
    source: str,
    actor: Any,
    number: str = "",
    correlation_id: str = "",
    data: dict[str, Any] | None = None,
) -> Accepted:
    """A signed document that cannot be read (an unknown shape, an amount or id the columns cannot hold) as a
    record parked for review with the reason, keyed UNREADABLE_PREFIX + `key` so it never takes a real
    document's place; the same key again attaches to it. Nothing is posted from it: a person reads the delivery
    and has Commerce send the document again, or marks the record ignored."""
    hint = (
        "Resolution: read the delivery (Commerce > Deliveries) or the document in Commerce; once Commerce sends "
        "a readable version (save the document again, or the backfill reads it), mark this record ignored."
    )
    fields = {
        "connection_id": connection.pk,
        "kind": kind if kind in Record.Kind.values else Record.Kind.UNKNOWN,
        "commerce_entity_id": f"{UNREADABLE_PREFIX}{key}"[:64],
        "commerce_number": number if len(number) <= 64 else "",
        "source": source,
        "document": {"unreadable": reason[:2000], **(data or {})},
        "state": Record.State.NEEDS_REVIEW,
        "last_error": f"Unreadable: {reason}"[:4000],
        "resolution_hint": hint,
    }
    record, created = _record_insert(connection, fields)
    audit_record(
        action="record.unreadable" if created else "record.duplicate",
        actor=actor,
        connection=connection,
        target=record,
        outcome=AuditEvent.Outcome.FAILURE if created else AuditEvent.Outcome.INFO,
        message=f"Signed {fields['kind']} could not be read, parked for review: {reason}"
        if created
        else f"Unreadable {fields['kind']} already parked; nothing new created",
        data={"source": source, "reason": reason[:2000], **(data or {})},
        correlation_id=correlation_id,
    )
    return Accepted(record=record, created=created)


def _record_insert(connection: Connection, fields: dict[str, Any]) -> tuple[Record, bool]:
    """(the record, created?): a new row in a savepoint, or the one the unique constraint says exists (a
    concurrent insert of the same document waits for the other transaction, then finds it)."""
    record = Record(**fields)
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        existing = Record.objects.filter(
            connection_id=fields["connection_id"], kind=fields["kind"], commerce_entity_id=fields["commerce_entity_id"]
        ).first()
        if existing is None:
            raise
        record = existing
        created = False
    else:
        created = True
    record.connection = connection  # cached: callers read it
    return record, created


def record_fields(*, connection: Connection, document: SalesDocument, source: str) -> dict[str, Any]:
    """A new record's field values (by attname) for a document."""
    return {
        "connection_id": connection.pk,
        "kind": document.kind,
        "commerce_entity_id": document.entity_id,
        "commerce_number": document.increment_id,
        "commerce_order_id": document.order_entity_id,
        "source": source,
        "document": document.to_json(),
        "document_date": document.created_at,
        "grand_total": document.grand_total,
        "currency": document.currency,
    }


def record_received_event(*, document: SalesDocument, source: str, created: bool = True) -> dict[str, Any]:
    """The audit event of a record's arrival (or of a duplicate), for audit_record."""
    return {
        "action": "record.received" if created else "record.duplicate",
        "target_type": Record._meta.label_lower,
        "outcome": AuditEvent.Outcome.SUCCESS if created else AuditEvent.Outcome.INFO,
        "message": (
            f"{document.kind} {document.increment_id} received via {source}"
            if created
            else f"{document.kind} {document.increment_id} already known; nothing new created"
        ),
        "data": {"source": source, "grand_total": str(document.grand_total), "currency": document.currency},
    }


def record_claim(*, record_id: int, worker: str = "", now: datetime | None = None) -> Record | None:
    """Take the record's lease if it is due and nobody holds it. Returns None when there is nothing to do
    (already done, not due, or another worker holds it). One worker at a time per record."""
    now = now or timezone.now()
    worker = worker or lease_token()
    lease = timedelta(seconds=settings.CONNECTOR_LEASE_SECONDS)
    with transaction.atomic():
        qs = Record.objects.filter(pk=record_id, state__in=Record.ACTIVE_STATES, next_attempt_at__lte=now)
        qs = qs.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        if connection_supports_skip_locked():
            # Lock the record row only: locking the joined connection row too would make concurrent claims
            # of other records of the same connection skip.
            qs = qs.select_for_update(skip_locked=True, of=("self",))
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


def record_renew_lease(*, record: Record, now: datetime | None = None) -> bool:
    """Extend the lease this worker holds, right before a write to Fusion: the write then happens with a full
    lease ahead, so no other worker can take the record mid-call. False when the lease was lost."""
    now = now or timezone.now()
    until = now + timedelta(seconds=settings.CONNECTOR_LEASE_SECONDS)
    renewed = Record.objects.filter(pk=record.pk, leased_by=record.leased_by, lease_until__gt=now).update(
        lease_until=until
    )
    if renewed:
        record.lease_until = until
    return bool(renewed)


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
    if isinstance(error, OutcomeUnknownError) or record.outcome_unknown:
        # Give the system time to finish (or give up on) a write it may still be doing before the next
        # attempt looks the document up: a look-up a second later could miss a create still in flight.
        delay = max(delay, float(settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS))
    with transaction.atomic():
        updated = Record.objects.filter(pk=record.pk, leased_by=record.leased_by).update(
            state=Record.State.RETRYING if record.state == Record.State.RECEIVED else record.state,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=str(error)[:4000],
            lease_until=None,
            leased_by="",
        )
        if not updated:
            return _left_to_new_holder(record)
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


def records_due_now(*, record_ids: list[int], now: datetime | None = None) -> int:
    """Make these records due now (those still received or waiting to retry), so a wake-up's worker may claim
    them at once instead of at their next timer; how many were moved."""
    now = now or timezone.now()
    return Record.objects.filter(
        pk__in=record_ids, state__in=(Record.State.RECEIVED, Record.State.RETRYING), next_attempt_at__gt=now
    ).update(next_attempt_at=now)


def records_retry_sooner(
    *, connection_id: int, per_second: float, limit: int, actor: str = "system:worker", now: datetime | None = None
) -> int:
    """The connection's calls to Fusion succeed again after failing: bring forward the next attempt of its records
    waiting on a failed attempt (their outcome known, so no write may still be running in Fusion), the earliest
    first and at most `limit`, spaced `per_second` from now so that they come back at the pace the connection can
    take, leaving room for new orders, instead of at their backoff times. A record already due sooner keeps its
    time; the attempts count stays. One audit event; how many were moved."""
    now = now or timezone.now()
    waiting = Record.objects.filter(
        connection=connection_id,
        state__in=(Record.State.RECEIVED, Record.State.RETRYING),
        attempts__gt=0,
        outcome_unknown=False,
    )
    ids = list(waiting.filter(next_attempt_at__gt=now).order_by("next_attempt_at", "pk").values_list("pk", flat=True))
    ids = ids[:limit]
    step = max(1, int(per_second))  # records that share one second
    moved = 0
    for start in range(0, len(ids), step):
        at = now + timedelta(seconds=start / per_second)
        moved += waiting.filter(pk__in=ids[start : start + step], next_attempt_at__gt=at).update(next_attempt_at=at)
    if moved:
        audit_record(
            action="records.retry_sooner",
            actor=actor,
            connection=connection_id,
            outcome=AuditEvent.Outcome.INFO,
            message=f"Fusion answers again: {moved} records waiting to retry brought forward, {per_second:.1f}/s",
            data={"records": moved, "per_second": round(per_second, 2), "over_seconds": round(len(ids) / per_second)},
        )
    return moved


def record_transition(
    *,
    record: Record,
    state: str,
    action: str,
    actor: Any,
    message: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Move a record to `state` (and set `fields`) with its audit event, in one transaction."""
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(state=state, **fields)
        audit_record(
            action=action,
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=outcome,
            message=message,
            data=data,
        )


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
        updated = Record.objects.filter(pk=record.pk, leased_by=record.leased_by).update(
            state=Record.State.NEEDS_REVIEW,
            last_error=reason[:4000],
            resolution_hint=hint[:2000],
            lease_until=None,
            leased_by="",
            attempts=attempts if attempts is not None else record.attempts,
        )
        if not updated:
            return _left_to_new_holder(record)
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


def _left_to_new_holder(record: Record) -> Record:
    """This worker's lease ran out and another worker took the record: the failure it met is not written over
    the new holder's state, attempts or lease. The record is returned as this worker knew it, not re-read: its
    lease token must stay this worker's, or a release would end the new holder's lease."""
    logger.warning(
        "Record %s is held by another worker now; its failure is left unrecorded",
        record.pk,
        extra={"record_id": record.pk},
    )
    return record


def _error_data(error: Exception | None) -> dict:
    if error is None:
        return {}
    as_dict = getattr(error, "as_dict", None)
    return as_dict() if callable(as_dict) else {"error": type(error).__name__, "message": str(error)}
