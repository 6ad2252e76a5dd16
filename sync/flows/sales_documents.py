"""The posting state machine of one record. A worker claims the record (row lock + lease), runs the next
step, and records the outcome: posted, retry later, or parked for review. Every transition is audited."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from commerce.client import CommerceClient
from commerce.enrichment import record_enrich
from commerce.payloads import order_document
from commerce.search import SearchCriteria
from connector.models import PLACEHOLDER_PREFIX, UNREADABLE_PREFIX, Connection, Record
from connector.records import (
    record_claim,
    record_park,
    record_release,
    record_renew_lease,
    record_retry_later,
    record_transition,
    records_due_now,
)
from connector.selectors import order_of, posted_sibling, waiting_on_order
from connector.wakeups import records_wake
from core.errors import ConnectorError, OutcomeUnknownError, PermanentError, TransientError
from core.metrics import RECORD_RETRIES, retry_reason
from fusion import fbdi, invoices
from fusion.client import FusionApi
from fusion.journals import journal_enqueue
from fusion.reference import reference_check
from fusion.throttle import paced_client
from mappings.plans import plan_from_json, plan_to_json
from mappings.rules import TAX_FUSION, PostingPlan
from mappings.services import plan_for_record

from ..metrics import posting_observe
from ..relay import relay_picked_up
from .tax_check import fusion_tax_check

logger = logging.getLogger(__name__)
ACTOR = "system:worker"


class LeaseLost(Exception):
    """This worker's lease ran out mid-step and another worker may hold the record now: touch nothing."""


class Parked(Exception):
    """A step found something a person must fix before the record can go on: park it with the reason."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def record_process(*, record_id: int) -> str:
    """Run the record's next step. Safe to call twice or concurrently: only the lease holder works."""
    record = record_claim(record_id=record_id)
    if record is None:
        return "skipped"
    relay_picked_up(record_id=record.pk)
    try:
        claimed = True  # the record as the claim just read it, under its row lock: nothing to re-read yet
        while True:
            outcome = _step(record, fresh=claimed)
            if outcome != "continue":
                return outcome
            claimed = False
    except LeaseLost:
        logger.warning(
            "Lease on record %s ran out mid-step; leaving it to its new holder",
            record.pk,
            extra={"record_id": record.pk},
        )
        return "lease_lost"
    except Parked as parked:
        record_park(record=record, reason=parked.reason, hint=parked.hint, actor=ACTOR)
        return "needs_review"
    except (OutcomeUnknownError, SoftTimeLimitExceeded) as exc:
        # Killed by the time limit, the step may have been mid-write: treat it like a lost answer.
        Record.objects.filter(pk=record.pk).update(outcome_unknown=True)
        record.outcome_unknown = True
        _retry_later(record, exc)
        return "retry"
    except TransientError as exc:
        _retry_later(record, exc)
        return "retry"
    except PermanentError as exc:
        record_park(record=record, reason=str(exc.message), hint=exc.hint or _hint_for(exc), actor=ACTOR, error=exc)
        return "needs_review"
    except Exception as exc:  # a defect or an unexpected answer: keep the record, retry, park when exhausted
        logger.exception("Unexpected error processing record %s", record.pk, extra={"record_id": record.pk})
        _retry_later(record, exc)
        return "retry"
    finally:
        record_release(record=record)


def _retry_later(record: Record, exc: Exception) -> None:
    RECORD_RETRIES.labels(record.connection.slug, retry_reason(exc)).inc()
    record_retry_later(record=record, error=exc, actor=ACTOR)


def _hint_for(exc: ConnectorError) -> str:
    if exc.status in (401, 403):
        return "Resolution: check the Fusion credentials and the integration user's roles, then replay."
    return "Resolution: correct the data Fusion refused (see the message), then replay."


def _step(record: Record, *, fresh: bool = False) -> str:
    if not fresh:
        _reread(record)
    if record.state in (Record.State.RECEIVED, Record.State.RETRYING):
        return _post_document(record)
    if record.state == Record.State.INVOICE_POSTED:
        plan = plan_from_json(record.plan) if record.plan else None  # read once for both
        _check_fusion_tax(record, plan)
        return _journal(record, plan)
    return "done"


def _reread(record: Record) -> None:
    """The record as the previous step left it in the database (its writes go through UPDATEs), checking that this
    worker still holds it. Its connection, read with the claim, is kept: refresh_from_db would drop it and the
    next step read it again."""
    held_by = record.leased_by
    connection = record.connection
    record.refresh_from_db()
    if record.connection_id == connection.pk:
        record.connection = connection
    if record.leased_by != held_by:
        # The lease ran out and another worker took the record: keep this worker's own token, so that neither
        # a check nor the release acts under the new holder's lease.
        record.leased_by = held_by
        raise LeaseLost()


def _check_fusion_tax(record: Record, plan: PostingPlan | None) -> None:
    """In the fusion tax mode, Fusion's tax on the document must agree with Commerce's before posting goes on
    (again after a replay: the check reads Fusion's tax each time)."""
    if plan is None or plan.tax_mode != TAX_FUSION:
        return
    problem = fusion_tax_check(record=record, plan=plan, client=paced_client(record.connection), actor=ACTOR)
    if problem is not None:
        raise Parked(*problem)


def _post_document(record: Record) -> str:
    """The record's AR document in Fusion: settled by the invoice policy, or planned, checked and posted."""
    if record.commerce_entity_id.startswith(UNREADABLE_PREFIX):
        raise Parked(
            f"Unreadable: {record.document.get('unreadable') or 'the delivery could not be read'}",
            "Resolution: nothing can be posted from an unreadable document; once Commerce sends a readable "
            "version (save the document again, or the backfill reads it), mark this record ignored.",
        )
    if record.commerce_entity_id.startswith(PLACEHOLDER_PREFIX):
        return _confirm_placeholder(record)
    settled = _settle_by_policy(record)
    if settled is not None:
        return settled
    plan = _plan(record)
    client = paced_client(record.connection)
    _check_reference(record, plan, client)
    posted = _create_in_fusion(record, plan, client)
    _mark_document_posted(record, plan, posted, client)
    return "continue"


def _settle_by_policy(record: Record) -> str | None:
    """One Commerce event bills a sale (the connection's `invoice_event`): the other is linked, never posted
    twice, whichever arrives first and whatever the policy was when its sibling was posted. None: post it."""
    by_invoice = record.connection.invoice_event == Connection.InvoiceEvent.INVOICE
    if record.kind == Record.Kind.ORDER:
        invoice = posted_sibling(record, Record.Kind.INVOICE)
        if by_invoice:
            return _settle_without_posting(
                record,
                "Orders are not posted under the invoice policy: each Commerce invoice becomes the AR invoice.",
                linked=invoice,
            )
        if invoice is not None:
            return _settle_without_posting(
                record,
                f"Commerce invoice {invoice.commerce_number} of this order was already posted as "
                f"{invoice.fusion_transaction_number}; the order is linked, not billed again.",
                linked=invoice,
            )
    elif record.kind == Record.Kind.INVOICE:
        if not by_invoice:
            return _link_invoice_to_order(record)
        # The policy was "order" when the order was posted: its AR invoice already bills this sale.
        order = posted_sibling(record, Record.Kind.ORDER)
        if order is not None:
            return _settle_without_posting(
                record,
                f"Order {order.commerce_number} was posted as {order.fusion_transaction_number} before the "
                "invoice policy applied; this Commerce invoice is linked, not billed again.",
                linked=order,
            )
    return None


def _plan(record: Record) -> PostingPlan:
    """Resolve the record with the rules as they are now and keep the plan on it. An invoice or credit memo
    bills its order's customer: the order's record, else the order fetched from Commerce (no webhook brought
    it, or it predates the connector). Store code, website, attribute sets and categories the rules match on
    are filled in from Commerce first: its sales payloads lack them."""
    order = order_of(record)
    if order is None and record.kind != Record.Kind.ORDER and record.commerce_order_id:
        order = order_document(CommerceClient.for_connection(record.connection).get_order(record.commerce_order_id))
    document = record_enrich(record=record, order=order, actor=ACTOR)
    plan = plan_for_record(record, order=order, document=document)
    Record.objects.filter(pk=record.pk).update(plan=plan_to_json(plan))
    if plan.problems:
        raise Parked(plan.problem_reason(), plan.problem_hint())
    if plan.total != plan.commerce_total:
        raise Parked(
            f"The plan totals {plan.total} but Commerce says {plan.commerce_total} "
            f"(difference {plan.total - plan.commerce_total} {plan.currency}).",
            "Resolution: check the order's lines, discounts and tax in Commerce and the mappings, then replay.",
        )
    return plan


def _check_reference(record: Record, plan: PostingPlan, client: FusionApi) -> None:
    """The customer account, its site and every account combination exist and are usable in Fusion."""
    combinations = [d.combination for d in plan.distributions] if plan.distributions_mode == "manual" else []
    if plan.journal_mode == Connection.JournalMode.SALES_JOURNAL:
        combinations += [line.combination for line in plan.journal_lines]
    problems = reference_check(
        connection=record.connection,
        client=client,
        on=plan.header.accounting_date,
        customer=(plan.header.bill_to_customer_number, plan.header.bill_to_site),
        combinations=combinations,
        segment_names=plan.segment_names,
        delimiter=plan.delimiter,
    )
    if problems:
        raise Parked(
            " ".join(p.message for p in problems),
            "Resolution: " + " ".join(dict.fromkeys(p.resolution for p in problems)),
        )


def _create_in_fusion(record: Record, plan: PostingPlan, client: FusionApi) -> invoices.PostedDocument:
    """Adopt the document if Fusion has it under any identity it was ever sent with, else create it."""

    def remember(identity: invoices.Identity) -> None:
        # Before the POST, with the lease renewed: a later attempt (or a replay after the mappings changed)
        # looks up every identity a create was ever sent with, so it finds this one.
        if not record_renew_lease(record=record):
            raise LeaseLost()
        if identity.as_json() not in record.posting_identities:
            record.posting_identities = [*record.posting_identities, identity.as_json()]
            Record.objects.filter(pk=record.pk).update(posting_identities=record.posting_identities)

    def before_create(identity: invoices.Identity) -> None:
        # Committed before the POST is sent: a worker that dies mid-POST leaves the attempt in the trail.
        with transaction.atomic():
            remember(identity)
            audit_record(
                action="record.post_attempt",
                actor=ACTOR,
                connection=record.connection_id,
                target=record,
                outcome=AuditEvent.Outcome.INFO,
                message=f"Creating {identity.resource} {identity.number} in Fusion",
                data={"identity": identity.as_json(), "total": str(plan.total), "currency": plan.currency},
            )

    known = tuple(invoices.Identity.from_json(i) for i in record.posting_identities)
    posted = invoices.document_post(
        client=client,
        plan=plan,
        complete=record.connection.complete_invoices,
        known=known,
        before_create=before_create,
    )
    if not posted.adopted and posted.transaction_number != plan.header.transaction_number:
        # The transaction source numbers documents itself: look this one up by Fusion's number from now on.
        remember(
            invoices.Identity(
                invoices.resource_for(plan),
                posted.transaction_number,
                plan.header.transaction_source,
                plan.header.business_unit,
            )
        )
    return posted


def _mark_document_posted(
    record: Record, plan: PostingPlan, posted: invoices.PostedDocument, client: FusionApi
) -> None:
    """Keep Fusion's id and number on the record, only while this worker still holds it."""
    with transaction.atomic():
        updated = Record.objects.filter(pk=record.pk, leased_by=record.leased_by).update(
            state=Record.State.INVOICE_POSTED,
            fusion_transaction_id=posted.transaction_id,
            fusion_transaction_number=posted.transaction_number,
            outcome_unknown=False,
            last_error="",
            resolution_hint="",
            posted_at=timezone.now(),
        )
        if not updated:
            # Another worker holds the record now; it will find this document by its look-up and adopt it.
            raise LeaseLost()
        posting_observe(record=record)
        woken = _wake_waiting_siblings(record)
        kind = "credit memo" if plan.is_credit_memo else "AR invoice"
        audit_record(
            action="record.document_adopted" if posted.adopted else "record.document_posted",
            actor=ACTOR,
            connection=record.connection_id,
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
                "woken_records": woken,
                "exchanges": client.take_exchanges(),
            },
        )


def _wake_waiting_siblings(record: Record) -> list[int]:
    """An order just got its AR document: its Commerce invoices and credit memos waiting on it are due now and
    woken once this commits, rather than on their next timer (also after the order was parked and replayed)."""
    waiting = waiting_on_order(record)
    if waiting:
        records_due_now(record_ids=waiting)
        transaction.on_commit(lambda: records_wake(record_ids=waiting))
    return waiting


def _journal(record: Record, plan: PostingPlan | None) -> str:
    connection = record.connection
    if connection.journal_mode != Connection.JournalMode.SALES_JOURNAL or plan is None or not plan.journal_lines:
        return _mark_posted(record)
    journal = fbdi.Journal(
        name=f"{record.fusion_transaction_number} {record.get_kind_display()}",
        description=f"Adobe Commerce {record.get_kind_display().lower()} {record.commerce_number}",
        accounting_date=plan.header.accounting_date,
        currency=plan.currency,
        conversion_type=plan.header.conversion.rate_type if plan.header.conversion else "",
        conversion_date=plan.header.conversion.conversion_date if plan.header.conversion else None,
        conversion_rate=plan.header.conversion.rate if plan.header.conversion else None,
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
    record_transition(
        record=record,
        state=Record.State.POSTED,
        action="record.posted",
        actor=ACTOR,
        message=f"Posted as {record.fusion_transaction_number}",
        posted_at=timezone.now(),
    )
    return "done"


def _settle_without_posting(record: Record, why: str, linked: Record | None = None) -> str:
    record_transition(
        record=record,
        state=Record.State.LINKED,
        action="record.linked",
        actor=ACTOR,
        message=why,
        outcome=AuditEvent.Outcome.INFO,
        data={"linked_record": linked.pk if linked else None},
        linked_record=linked,
        last_error="",
        resolution_hint="",
    )
    return "done"


def _wait(record: Record, reason: str, *, delay: timedelta, give_up_after: timedelta, hint: str) -> str:
    """Wait for something outside this record (its order to post, Commerce to confirm it) without using up
    the retry attempts meant for failures; park once it has waited too long."""
    if timezone.now() - record.created_at > give_up_after:
        record_park(
            record=record,
            reason=f"{reason} (waited since {record.created_at:%Y-%m-%d %H:%M} UTC)",
            hint=hint,
            actor=ACTOR,
        )
        return "needs_review"
    record_transition(
        record=record,
        state=Record.State.RETRYING,
        action="record.waiting",
        actor=ACTOR,
        message=reason,
        outcome=AuditEvent.Outcome.INFO,
        next_attempt_at=timezone.now() + delay,
        last_error=reason[:4000],
    )
    return "waiting"


def _link_invoice_to_order(record: Record) -> str:
    """Under the order policy the AR invoice was made from the order; the Commerce invoice is linked, never
    posted again. It waits until the order's AR invoice exists."""
    order = posted_sibling(record, Record.Kind.ORDER)
    if order is None:
        waited = _wait(
            record,
            f"Waiting for order {record.commerce_order_id or '?'} to be posted before linking this invoice",
            delay=timedelta(minutes=5),
            give_up_after=timedelta(days=7),
            hint="Resolution: post (or replay) the order this invoice belongs to; the invoice then links to it.",
        )
        # The order's posting wakes this invoice; if it committed while this worker held the invoice, that
        # wake-up found it leased: look once more rather than sleep through the timer.
        return "continue" if waited == "waiting" and posted_sibling(record, Record.Kind.ORDER) else waited
    return _settle_without_posting(
        record,
        f"Commerce invoice {record.commerce_number} belongs to order {order.commerce_number}, posted as "
        f"{order.fusion_transaction_number}; linked, not posted again.",
        linked=order,
    )


def _confirm_placeholder(record: Record) -> str:
    """An order known only by its number came from a "before" hook: the order may never be placed (payment
    declined, another hook refused it). It is posted only once Commerce has it: then it takes the real entity
    id (and Commerce's saved version of the order), or, when a record with that id exists, merges into it."""
    number = record.commerce_entity_id.removeprefix(PLACEHOLDER_PREFIX)
    client = CommerceClient.for_connection(record.connection)
    found = next(
        iter(client.iter_search("orders", SearchCriteria().where("increment_id", number).page(1, size=1))), None
    )
    if found is None:
        return _wait(
            record,
            f"Order {number} came from a before-placement hook and Commerce does not have it (yet)",
            delay=timedelta(minutes=2),
            give_up_after=timedelta(hours=24),
            hint="Resolution: if the order was never placed (payment declined, checkout abandoned), mark this "
            "record ignored; if it exists in Commerce, replay.",
        )
    document = order_document(found)
    with transaction.atomic():
        existing = Record.objects.filter(
            connection=record.connection_id, kind=Record.Kind.ORDER, commerce_entity_id=document.entity_id
        ).first()
        if existing is not None:
            _settle_without_posting(
                record, f"Order {number} is record {existing.pk} (entity {document.entity_id}); merged", existing
            )
            return "done"
        Record.objects.filter(pk=record.pk).update(
            commerce_entity_id=document.entity_id, document=document.to_json(), grand_total=document.grand_total
        )
        audit_record(
            action="record.confirmed",
            actor=ACTOR,
            connection=record.connection_id,
            target=record,
            message=f"Commerce confirmed order {number} as entity {document.entity_id}",
        )
    return "continue"
