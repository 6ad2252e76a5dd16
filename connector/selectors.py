"""Reads of the ledger that need some thought: what is due, a document's order, its posted siblings."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .documents import SalesDocument
from .models import Connection, Record


def due_record_ids(*, limit: int) -> list[int]:
    """Records a worker should look at now: active, due, on an enabled connection, and not leased."""
    now = timezone.now()
    return list(
        Record.objects.filter(state__in=Record.ACTIVE_STATES, next_attempt_at__lte=now, connection__enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


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


def posted_sibling(record: Record, kind: str) -> Record | None:
    """The record of the other kind for the same Commerce order that already has a Fusion document."""
    query = Record.objects.filter(connection=record.connection_id, kind=kind).exclude(fusion_transaction_id="")
    if kind == Record.Kind.ORDER:
        if not record.commerce_order_id:  # a document that does not name its order has no order sibling
            return None
        query = query.filter(commerce_entity_id=record.commerce_order_id)
    else:
        query = query.filter(commerce_order_id=record.commerce_entity_id)
    return query.order_by("posted_at", "pk").first()


def waiting_on_order(order: Record) -> list[int]:
    """The order's Commerce invoices and credit memos that are still to be processed (received, or waiting to
    retry, e.g. for this order to post): what the order's posting should wake at once."""
    if order.kind != Record.Kind.ORDER:
        return []
    return list(
        Record.objects.filter(
            connection=order.connection_id,
            kind__in=(Record.Kind.INVOICE, Record.Kind.CREDIT_MEMO),
            commerce_order_id=order.commerce_entity_id,
            state__in=(Record.State.RECEIVED, Record.State.RETRYING),
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def credited_invoice_number(record: Record, document: SalesDocument) -> str:
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
