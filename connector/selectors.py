"""Reads of the ledger that need some thought: what is due, a document's order, its posted siblings."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .documents import SalesDocument
from .models import Record


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
