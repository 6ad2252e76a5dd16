"""The sales journal: records' balanced lines join the connection's open batch; a beat task closes batches
on their window or size, ships each as one FBDI import and follows the ESS job to its end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from connector.models import Connection, Record
from connector.records import record_transition
from core.errors import ConnectorError, OutcomeUnknownError, TransientError
from mappings.selectors import segment_layout_on

from . import fbdi
from .client import FusionApi
from .models import JournalBatch, JournalEntry
from .throttle import paced_client

logger = logging.getLogger(__name__)
ClientFactory = Callable[[Connection], FusionApi]
POLL_DELAYS = (15, 30, 60, 120, 300)  # seconds between ESS status polls, the last one repeating
MAX_POLLS = 200


def _new_group_id() -> int:
    # Milliseconds since the epoch: numeric, increasing, 13 digits (GL_INTERFACE.GROUP_ID is NUMBER(18)).
    return int(time.time() * 1000)


def _open_batch(connection: Connection) -> JournalBatch:
    batch = (
        JournalBatch.objects.select_for_update().filter(connection=connection, state=JournalBatch.State.OPEN).first()
    )
    if batch is not None:
        return batch
    for _ in range(5):
        try:
            with transaction.atomic():
                group_id = _new_group_id()
                return JournalBatch.objects.create(
                    connection=connection,
                    group_id=group_id,
                    name=f"{connection.slug.upper()[:40]}-{timezone.now():%Y%m%d-%H%M%S}-{group_id % 100000:05d}",
                )
        except IntegrityError:
            # Another worker opened the batch, or took this group id in the same millisecond.
            existing = (
                JournalBatch.objects.select_for_update()
                .filter(connection=connection, state=JournalBatch.State.OPEN)
                .first()
            )
            if existing is not None:
                return existing
            time.sleep(0.002)
    raise TransientError("could not open a journal batch (contention); will retry")


def journal_enqueue(*, record: Record, journal: fbdi.Journal, actor: str = "system:worker") -> JournalEntry:
    """Add the record's journal to the open batch (idempotent: a record joins one batch only)."""
    if fbdi.unbalanced(journal):
        raise ValueError(f"journal for {record} does not balance")
    existing = JournalEntry.objects.filter(record=record).select_related("batch").first()
    if existing is not None:
        return existing
    connection = record.connection
    with transaction.atomic():
        batch = _open_batch(connection)
        entry = JournalEntry.objects.create(
            batch=batch,
            record=record,
            accounting_date=journal.accounting_date,
            currency=journal.currency,
            conversion=_conversion_json(journal),
            lines=[
                {
                    "combination": line.combination,
                    "entered_dr": _s(line.entered_dr),
                    "entered_cr": _s(line.entered_cr),
                    "description": line.description,
                }
                for line in journal.lines
            ],
        )
        batch.line_count += len(journal.lines)
        fields = ["line_count"]
        if batch.line_count >= connection.journal_batch_max_lines:
            batch.state, batch.closed_at = JournalBatch.State.CLOSED, timezone.now()
            fields += ["state", "closed_at"]
        batch.save(update_fields=fields)
        audit_record(
            action="journal.line_added",
            actor=actor,
            connection=connection,
            target=record,
            message=f"{len(journal.lines)} journal lines joined batch {batch.name}",
            data={"batch": batch.name, "group_id": batch.group_id, "lines": entry.lines},
        )
    return entry


def _s(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _conversion_json(journal: fbdi.Journal) -> dict[str, str | None]:
    if not journal.conversion_type:
        return {}
    day = journal.conversion_date or journal.accounting_date
    return {"rate_type": journal.conversion_type, "date": day.isoformat(), "rate": _s(journal.conversion_rate)}


def _journal_of(entry: JournalEntry) -> fbdi.Journal:
    number = entry.record.fusion_transaction_number or entry.record.commerce_number
    conversion = entry.conversion or {}
    return fbdi.Journal(
        name=f"{number} {entry.record.get_kind_display()}"[:100],
        description=f"Adobe Commerce {entry.record.get_kind_display().lower()} {entry.record.commerce_number}",
        accounting_date=entry.accounting_date,
        currency=entry.currency,
        conversion_type=conversion.get("rate_type") or "",
        conversion_date=date.fromisoformat(conversion["date"]) if conversion.get("date") else None,
        conversion_rate=Decimal(conversion["rate"]) if conversion.get("rate") else None,
        lines=[
            fbdi.JournalLine(
                combination=line["combination"],
                entered_dr=Decimal(line["entered_dr"]) if line["entered_dr"] else None,
                entered_cr=Decimal(line["entered_cr"]) if line["entered_cr"] else None,
                description=line["description"],
            )
            for line in entry.lines
        ],
    )


def batch_header(batch: JournalBatch, delimiter: str = "-") -> fbdi.BatchHeader:
    connection = batch.connection
    return fbdi.BatchHeader(
        ledger_id=connection.ledger_id,
        source=connection.journal_source,
        category=connection.journal_category,
        group_id=batch.group_id,
        batch_name=batch.name,
        batch_description=f"Adobe Commerce sales, {connection.name}",
        created_on=timezone.localdate(),
        delimiter=delimiter,
    )


def batch_file(batch: JournalBatch, delimiter: str = "-") -> tuple[list[list[str]], bytes]:
    entries = batch.entries.select_related("record").order_by("id")
    rows = fbdi.gl_interface_rows(batch_header(batch, delimiter), [_journal_of(e) for e in entries])
    return rows, fbdi.gl_interface_zip(rows)


def batches_close_due(*, now=None) -> list[int]:
    """Close every open batch whose window has passed (empty batches stay open)."""
    now = now or timezone.now()
    closed = []
    for batch in JournalBatch.objects.filter(state=JournalBatch.State.OPEN, line_count__gt=0).select_related(
        "connection"
    ):
        if batch.opened_at + timedelta(minutes=batch.connection.journal_batch_minutes) <= now:
            updated = JournalBatch.objects.filter(pk=batch.pk, state=JournalBatch.State.OPEN).update(
                state=JournalBatch.State.CLOSED, closed_at=now
            )
            if updated:
                closed.append(batch.pk)
    return closed


INTERRUPTED_AFTER = timedelta(minutes=15)


def batches_recover_interrupted(*, now=None, actor: str = "system:journal-ship") -> list[int]:
    """A batch left SUBMITTING (the worker died mid-call) may or may not have reached Fusion: park it for a
    person to check, never send it again by itself."""
    now = now or timezone.now()
    stale = JournalBatch.objects.filter(
        state=JournalBatch.State.SUBMITTING, submitted_at__lt=now - INTERRUPTED_AFTER
    ).select_related("connection")
    parked = []
    for batch in stale:
        _batch_park(
            batch,
            f"The submission of {batch.file_name} was interrupted; Fusion may or may not have received it.",
            "Resolution: look in Fusion's Scheduled Processes for a Load Interface File for Import of "
            f"{batch.file_name}. If it ran, mark the batch imported; if not, resubmit it.",
            actor,
        )
        parked.append(batch.pk)
    return parked


def batch_submit(
    *, batch_id: int, client_factory: ClientFactory, delimiter: str = "-", actor: str = "system:journal-ship"
) -> JournalBatch:
    """Ship a closed batch as one importBulkData call. A batch is submitted at most once: it moves to
    SUBMITTING under a row lock first, and an unknown outcome parks it instead of sending it again."""
    with transaction.atomic():
        batch = (
            JournalBatch.objects.select_for_update()
            .select_related("connection")
            .filter(pk=batch_id, state=JournalBatch.State.CLOSED)
            .first()
        )
        if batch is None:
            return JournalBatch.objects.get(pk=batch_id)
        batch.state = JournalBatch.State.SUBMITTING
        batch.file_name = f"GlInterface_{batch.group_id}.zip"
        batch.submitted_at = timezone.now()  # when the attempt started; a stale one was interrupted
        batch.save(update_fields=["state", "file_name", "submitted_at"])
    connection = batch.connection
    try:
        _, zip_bytes = batch_file(batch, delimiter)
        payload = fbdi.import_bulk_data_payload(batch_header(batch, delimiter), zip_bytes, batch.file_name)
        job = client_factory(connection).import_bulk_data(payload)
    except OutcomeUnknownError as exc:
        return _batch_park(
            batch,
            f"The import request for {batch.file_name} may or may not have reached Fusion: {exc}",
            "Resolution: look in Fusion's Scheduled Processes for a Load Interface File for Import "
            f"of {batch.file_name}. If it ran, mark the batch imported; if not, resubmit it.",
            actor,
        )
    except TransientError as exc:
        # Nothing was created (the request did not get through): try again on the next tick.
        JournalBatch.objects.filter(pk=batch.pk).update(state=JournalBatch.State.CLOSED, last_error=str(exc)[:4000])
        audit_record(
            action="journal.submit_retry",
            actor=actor,
            connection=connection,
            target=batch,
            outcome=AuditEvent.Outcome.RETRY,
            message=str(exc),
        )
        batch.refresh_from_db()
        return batch
    except (ConnectorError, ValueError) as exc:
        return _batch_park(
            batch,
            f"Fusion refused the journal import: {exc}",
            "Resolution: correct the journal source, category, ledger or accounts, then resubmit.",
            actor,
        )
    request_id = job.request_id
    now = timezone.now()
    JournalBatch.objects.filter(pk=batch.pk).update(
        state=JournalBatch.State.RUNNING,
        request_id=request_id,
        submitted_at=now,
        next_poll_at=now + timedelta(seconds=POLL_DELAYS[0]),
        last_error="",
    )
    audit_record(
        action="journal.submitted",
        actor=actor,
        connection=connection,
        target=batch,
        message=f"Batch {batch.name} submitted as ESS request {request_id}",
        data={
            "file": batch.file_name,
            "group_id": batch.group_id,
            "lines": batch.line_count,
            "request_id": request_id,
        },
    )
    batch.refresh_from_db()
    return batch


def batch_poll(*, batch_id: int, client_factory: ClientFactory, actor: str = "system:journal-ship") -> JournalBatch:
    """Follow the ESS job of a running batch; settle the batch and its records when the job ends."""
    batch = JournalBatch.objects.select_related("connection").get(pk=batch_id)
    if batch.state != JournalBatch.State.RUNNING:
        return batch
    try:
        job = client_factory(batch.connection).ess_job_status(batch.request_id)
    except TransientError as exc:
        return _schedule_poll(batch, str(exc))
    except ConnectorError as exc:
        return _batch_park(
            batch,
            f"Could not read the import job's status: {exc}",
            "Resolution: check the integration user's access to erpintegrations.",
            actor,
        )
    status = job.status
    if status not in fbdi.TERMINAL_STATES:
        if batch.polls + 1 >= MAX_POLLS:
            return _batch_park(
                batch,
                f"ESS request {batch.request_id} still {status or 'unknown'} after {batch.polls + 1} polls",
                "Resolution: check the job in Scheduled Processes.",
                actor,
            )
        return _schedule_poll(batch, "", status)
    now = timezone.now()
    if status in ("SUCCEEDED", "WARNING"):
        with transaction.atomic():
            JournalBatch.objects.filter(pk=batch.pk).update(
                state=JournalBatch.State.SUCCEEDED if status == "SUCCEEDED" else JournalBatch.State.WARNING,
                ess_status=status,
                finished_at=now,
                polls=batch.polls + 1,
            )
            record_ids = list(batch.entries.values_list("record_id", flat=True))
            audit_record(
                action="journal.imported",
                actor=actor,
                connection=batch.connection,
                target=batch,
                outcome=AuditEvent.Outcome.SUCCESS if status == "SUCCEEDED" else AuditEvent.Outcome.INFO,
                message=f"Batch {batch.name}: ESS request {batch.request_id} {status}",
                data={"records": record_ids, "status": status},
            )
            for record in Record.objects.filter(pk__in=record_ids, state=Record.State.JOURNAL_PENDING):
                record_transition(
                    record=record,
                    state=Record.State.POSTED,
                    action="record.posted",
                    actor=actor,
                    message=f"Journal imported in batch {batch.name} ({status})",
                    posted_at=now,
                )
        batch.refresh_from_db()
        return batch
    details = job.message
    JournalBatch.objects.filter(pk=batch.pk).update(ess_status=status, finished_at=now, polls=batch.polls + 1)
    return _batch_park(
        batch,
        f"Journal import ESS request {batch.request_id} ended {status}. {details}".strip(),
        "Resolution: read the Import Journals log in Fusion (GL_INTERFACE rejects), fix the "
        "accounts or period, then resubmit the batch.",
        actor,
    )


def _schedule_poll(batch: JournalBatch, error: str, status: str = "") -> JournalBatch:
    delay = POLL_DELAYS[min(batch.polls, len(POLL_DELAYS) - 1)]
    JournalBatch.objects.filter(pk=batch.pk).update(
        polls=batch.polls + 1,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        ess_status=status or batch.ess_status,
        last_error=error[:4000],
    )
    batch.refresh_from_db()
    return batch


def _batch_park(batch: JournalBatch, reason: str, hint: str, actor: str) -> JournalBatch:
    with transaction.atomic():
        JournalBatch.objects.filter(pk=batch.pk).update(
            state=JournalBatch.State.NEEDS_REVIEW, last_error=reason[:4000], resolution_hint=hint[:2000]
        )
        audit_record(
            action="journal.needs_review",
            actor=actor,
            connection=batch.connection,
            target=batch,
            outcome=AuditEvent.Outcome.FAILURE,
            message=reason,
            data={"hint": hint},
        )
        for record in Record.objects.filter(journal_entry__batch=batch, state=Record.State.JOURNAL_PENDING):
            record_transition(
                record=record,
                state=Record.State.NEEDS_REVIEW,
                action="record.needs_review",
                actor=actor,
                message=f"Journal batch {batch.name}: {reason}",
                outcome=AuditEvent.Outcome.FAILURE,
                last_error=f"Journal batch {batch.name}: {reason}"[:4000],
                resolution_hint="Resolution: the AR document is posted; the journal batch needs review "
                f"({batch.name}). Resubmit the batch once fixed.",
            )
    batch.refresh_from_db()
    return batch


def batch_resubmit(*, batch: JournalBatch, actor, reason: str) -> JournalBatch:
    """Ship a parked batch's journals again under a new GROUP_ID. Only for a batch that Fusion did not
    import (ERROR, or an unknown outcome checked by a person): the old batch is superseded and never sent again."""
    if not reason.strip():
        raise ValueError("Say why the batch is resubmitted (for example: checked in Fusion, nothing was imported).")
    with transaction.atomic():
        old = JournalBatch.objects.select_for_update().get(pk=batch.pk)
        if old.state != JournalBatch.State.NEEDS_REVIEW:
            raise ValueError(
                f"Only a batch needing review can be resubmitted (this one is {old.get_state_display().lower()})."
            )
        new = JournalBatch.objects.create(
            connection=old.connection,
            group_id=_new_group_id(),
            name=f"{old.name}-R",
            state=JournalBatch.State.CLOSED,
            closed_at=timezone.now(),
            line_count=old.line_count,
        )
        old.entries.update(batch=new)
        JournalBatch.objects.filter(pk=old.pk).update(state=JournalBatch.State.SUPERSEDED, resubmitted_as=new)
        for record in Record.objects.filter(journal_entry__batch=new, state=Record.State.NEEDS_REVIEW):
            record_transition(
                record=record,
                state=Record.State.JOURNAL_PENDING,
                action="record.journal_resubmitted",
                actor=actor,
                message=f"Journal lines resubmitted in batch {new.name}: {reason}",
                resolution_hint="",
            )
        audit_record(
            action="journal.resubmitted",
            actor=actor,
            connection=old.connection,
            target=old,
            message=reason,
            data={"new_batch": new.name, "new_group_id": new.group_id},
        )
    return new


def batch_mark_imported(*, batch: JournalBatch, actor, reason: str) -> JournalBatch:
    """A person checked in Fusion that a batch with an unknown outcome was imported: settle it without sending."""
    if not reason.strip():
        raise ValueError("Say what was checked in Fusion.")
    with transaction.atomic():
        locked = JournalBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != JournalBatch.State.NEEDS_REVIEW:
            raise ValueError("Only a batch needing review can be marked imported.")
        now = timezone.now()
        JournalBatch.objects.filter(pk=locked.pk).update(state=JournalBatch.State.SUCCEEDED, finished_at=now)
        for record in Record.objects.filter(
            journal_entry__batch=locked, state=Record.State.NEEDS_REVIEW, fusion_transaction_id__gt=""
        ):
            record_transition(
                record=record,
                state=Record.State.POSTED,
                action="record.posted",
                actor=actor,
                message=f"Journal batch {locked.name} marked imported: {reason}",
                posted_at=now,
                resolution_hint="",
            )
        audit_record(
            action="journal.marked_imported",
            actor=actor,
            connection=locked.connection,
            target=locked,
            message=reason,
        )
    locked.refresh_from_db()
    return locked


def journals_ship(*, client_factory: ClientFactory = paced_client) -> dict[str, int]:
    """One shipping round: park interrupted submissions, close due batches, submit closed ones (with the segment
    delimiter of their connection's layout) and follow running imports."""
    batches_recover_interrupted()
    closed = batches_close_due()
    submitted = polled = 0
    for batch in JournalBatch.objects.filter(state=JournalBatch.State.CLOSED).select_related("connection"):
        _, delimiter = segment_layout_on(batch.connection)
        batch_submit(batch_id=batch.pk, client_factory=client_factory, delimiter=delimiter)
        submitted += 1
    due = JournalBatch.objects.filter(state=JournalBatch.State.RUNNING, next_poll_at__lte=timezone.now())
    for batch_id in due.values_list("pk", flat=True):
        batch_poll(batch_id=batch_id, client_factory=client_factory)
        polled += 1
    return {"closed": len(closed), "submitted": submitted, "polled": polled}
