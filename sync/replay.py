"""Replay and ignore: a finance user's decisions on a record, audited, refused while a worker holds it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from connector.models import Record
from connector.wakeups import record_wake

# States a finance user may replay: parked, ignored, or waiting for its next attempt.
REPLAYABLE_STATES = (Record.State.NEEDS_REVIEW, Record.State.IGNORED, Record.State.RETRYING)


def record_replay(*, record: Record, actor: Any, reason: str = "") -> Record:
    """Put a parked (or ignored) record back in line; the step that failed runs again with current mappings."""
    with transaction.atomic():
        locked = Record.objects.select_for_update().get(pk=record.pk)
        if locked.state not in REPLAYABLE_STATES:
            raise ValueError(
                f"Only records needing review, ignored or waiting to retry can be replayed "
                f"(this one is {locked.get_state_display().lower()})."
            )
        _refuse_while_leased(locked, "replayed")
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
        locked = Record.objects.select_for_update().get(pk=record.pk)
        if locked.state not in (Record.State.RECEIVED, Record.State.RETRYING, Record.State.NEEDS_REVIEW):
            raise ValueError(
                f"Only records not yet in Fusion can be ignored (this one is {locked.get_state_display().lower()})."
            )
        _refuse_while_leased(locked, "ignored")
        Record.objects.filter(pk=record.pk).update(state=Record.State.IGNORED)
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


def _refuse_while_leased(record: Record, what: str) -> None:
    # A worker holding the record may be creating its document in Fusion right now: taking the record from it
    # could make a second worker post the same document before the first one's create is visible.
    if record.lease_until is not None and record.lease_until > timezone.now():
        raise ValueError(f"A worker is posting this record right now; it can be {what} once it has finished.")
