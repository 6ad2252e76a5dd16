"""The posting state machine of one record. A worker claims the record (row lock + lease), runs the next
step, and records the outcome: posted, retry later, or parked for review. Every transition is audited."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from fusion import fbdi, invoices
from fusion.client import FusionClient
from fusion.journals import journal_enqueue
from fusion.reference import reference_check
from fusion.throttle import PacedClient
from mappings.services import plan_for_record, plan_from_json, plan_to_json

from .exceptions import ConnectorError, OutcomeUnknownError, PermanentError, TransientError
from .models import Connection, Record
from .relay import relay_picked_up
from .services import record_claim, record_park, record_release, record_renew_lease, record_retry_later

logger = logging.getLogger(__name__)
ACTOR = "system:worker"


class LeaseLost(Exception):
    """This worker's lease ran out mid-step and another worker may hold the record now: touch nothing."""


def fusion_client_for(connection: Connection):
    """The paced Fusion client of a connection (the seam tests and the e2e run replace nothing: they point the
    connection at the mock server)."""
    return PacedClient(FusionClient.for_connection(connection), connection)


def record_process(*, record_id: int) -> str:
    """Run the record's next step. Safe to call twice or concurrently: only the lease holder works."""
    record = record_claim(record_id=record_id)
    if record is None:
        return "skipped"
    relay_picked_up(record_id=record.pk)
    try:
        while True:
            outcome = _step(record)
            if outcome != "continue":
                return outcome
    except LeaseLost:
        logger.warning(
            "Lease on record %s ran out mid-step; leaving it to its new holder",
            record.pk,
            extra={"record_id": record.pk},
        )
        return "lease_lost"
    except OutcomeUnknownError as exc:
        Record.objects.filter(pk=record.pk).update(outcome_unknown=True)
        record.outcome_unknown = True
        record_retry_later(record=record, error=exc, actor=ACTOR)
        return "retry"
    except TransientError as exc:
        record_retry_later(record=record, error=exc, actor=ACTOR)
        return "retry"
    except PermanentError as exc:
        record_park(record=record, reason=str(exc.message), hint=exc.hint or _hint_for(exc), actor=ACTOR, error=exc)
        return "needs_review"
    except Exception as exc:  # a defect or an unexpected answer: keep the record, retry, park when exhausted
        logger.exception("Unexpected error processing record %s", record.pk, extra={"record_id": record.pk})
        record_retry_later(record=record, error=exc, actor=ACTOR)
        return "retry"
    finally:
        record_release(record=record)


def _hint_for(exc: ConnectorError) -> str:
    if exc.status in (401, 403):
        return "Resolution: check the Fusion credentials and the integration user's roles, then replay."
    return "Resolution: correct the data Fusion refused (see the message), then replay."


def _step(record: Record) -> str:
    record.refresh_from_db()
    if record.state in (Record.State.RECEIVED, Record.State.RETRYING):
        return _post_document(record)
    if record.state == Record.State.INVOICE_POSTED:
        return _journal(record)
    return "done"


def _post_document(record: Record) -> str:
    connection = record.connection
    policy = connection.invoice_event
    if record.kind == Record.Kind.ORDER and policy == Connection.InvoiceEvent.INVOICE:
        return _settle_without_posting(
            record, "Orders are not posted under the invoice policy: each Commerce invoice becomes the AR invoice."
        )
    if record.kind == Record.Kind.INVOICE and policy == Connection.InvoiceEvent.ORDER:
        return _link_invoice_to_order(record)

    plan = plan_for_record(record)
    Record.objects.filter(pk=record.pk).update(plan=plan_to_json(plan))
    if plan.problems:
        record_park(record=record, reason=plan.problem_reason(), hint=plan.problem_hint(), actor=ACTOR)
        return "needs_review"
    if plan.total != plan.commerce_total:
        record_park(
            record=record,
            reason=f"The plan totals {plan.total} but Commerce says {plan.commerce_total} "
            f"(difference {plan.total - plan.commerce_total} {plan.currency}).",
            hint="Resolution: check the order's lines, discounts and tax in Commerce and the mappings, then replay.",
            actor=ACTOR,
        )
        return "needs_review"

    client = fusion_client_for(connection)
    problems = _reference_problems(record, plan, client)
    if problems:
        record_park(
            record=record,
            reason=" ".join(p.message for p in problems),
            hint="Resolution: " + " ".join(dict.fromkeys(p.resolution for p in problems)),
            actor=ACTOR,
        )
        return "needs_review"

    if not record_renew_lease(record=record):
        raise LeaseLost()
    posted = invoices.document_post(client=client, plan=plan, complete=connection.complete_invoices)
    now = timezone.now()
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.INVOICE_POSTED,
            fusion_transaction_id=posted.transaction_id,
            fusion_transaction_number=posted.transaction_number,
            outcome_unknown=False,
            last_error="",
            resolution_hint="",
            posted_at=now,
        )
        kind = "credit memo" if plan.is_credit_memo else "AR invoice"
        audit_record(
            action="record.document_adopted" if posted.adopted else "record.document_posted",
            actor=ACTOR,
            connection=connection,
            target=record,
            message=(
                f"Fusion already had {kind} {posted.transaction_number} (id {posted.transaction_id}); adopted it"
                if posted.adopted
                else f"{kind} {posted.transaction_number} created in Fusion (id {posted.transaction_id})"
            ),
            data={
                "transaction_id": posted.transaction_id,
                "transaction_number": posted.transaction_number,
                "total": str(plan.total),
                "currency": plan.currency,
                "after_unknown_outcome": record.outcome_unknown,
                "exchanges": client.take_exchanges(),
            },
        )
    return "continue"


def _reference_problems(record: Record, plan, client):
    combinations = [d.combination for d in plan.distributions] if plan.distributions_mode == "manual" else []
    if plan.journal_mode == Connection.JournalMode.SALES_JOURNAL:
        combinations += [line.combination for line in plan.journal_lines]
    return reference_check(
        connection=record.connection,
        client=client,
        on=plan.header.accounting_date,
        customer=(plan.header.bill_to_customer_number, plan.header.bill_to_site),
        combinations=combinations,
        segment_names=plan.segment_names,
        delimiter=plan.delimiter,
    )


def _journal(record: Record) -> str:
    connection = record.connection
    plan = plan_from_json(record.plan) if record.plan else None
    if connection.journal_mode != Connection.JournalMode.SALES_JOURNAL or plan is None or not plan.journal_lines:
        return _mark_posted(record)
    journal = fbdi.Journal(
        name=f"{record.fusion_transaction_number} {record.get_kind_display()}",
        description=f"Adobe Commerce {record.get_kind_display().lower()} {record.commerce_number}",
        accounting_date=plan.header.accounting_date,
        currency=plan.currency,
        lines=[
            fbdi.JournalLine(
                combination=line.combination,
                entered_dr=line.entered_dr if line.entered_dr else None,
                entered_cr=line.entered_cr if line.entered_cr else None,
                description=line.description,
            )
            for line in plan.journal_lines
        ],
    )
    with transaction.atomic():
        journal_enqueue(record=record, journal=journal, actor=ACTOR)
        Record.objects.filter(pk=record.pk).update(state=Record.State.JOURNAL_PENDING)
    return "done"


def _mark_posted(record: Record) -> str:
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(state=Record.State.POSTED, posted_at=timezone.now())
        audit_record(
            action="record.posted",
            actor=ACTOR,
            connection=record.connection_id,
            target=record,
            message=f"Posted as {record.fusion_transaction_number}",
        )
    return "done"


def _settle_without_posting(record: Record, why: str, linked: Record | None = None) -> str:
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.LINKED, linked_record=linked, last_error="", resolution_hint=""
        )
        audit_record(
            action="record.linked",
            actor=ACTOR,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.INFO,
            message=why,
            data={"linked_record": linked.pk if linked else None},
        )
    return "done"


def _link_invoice_to_order(record: Record) -> str:
    """Under the order policy the AR invoice was made from the order; the Commerce invoice is linked, never
    posted again. It waits (as a retry) until the order's AR invoice exists."""
    order = Record.objects.filter(
        connection=record.connection_id, kind=Record.Kind.ORDER, commerce_entity_id=record.commerce_order_id
    ).first()
    if order is None or not order.fusion_transaction_id:
        raise TransientError(
            f"Waiting for order {record.commerce_order_id or '?'} to be posted before linking this invoice"
        )
    return _settle_without_posting(
        record,
        f"Commerce invoice {record.commerce_number} belongs to order {order.commerce_number}, posted as "
        f"{order.fusion_transaction_number}; linked, not posted again.",
        linked=order,
    )
