"""Thin Celery doors for the Fusion side: the journal shipper and the reference-data refresh."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from connector.exceptions import ConnectorError
from connector.models import Connection
from connector.pipeline import fusion_client_for
from connector.tasks import fan_out_per_connection

from . import journals, reference
from .models import JournalBatch

logger = logging.getLogger(__name__)
SHIP_LOCK_SECONDS = 600


def _layout(connection: Connection) -> tuple[tuple[str, ...], str]:
    from mappings.models import SegmentLayout

    today = timezone.localdate()
    for layout in SegmentLayout.objects.filter(connection=connection, enabled=True).order_by("-effective_from"):
        if (layout.effective_from is None or layout.effective_from <= today) and (
            layout.effective_to is None or layout.effective_to >= today
        ):
            return layout.names, layout.delimiter
    return (), "-"


@shared_task(name="fusion.ship_journals", ignore_result=True)
def ship_journals() -> str:
    """Beat: close due batches, submit closed ones, follow running imports. One shipper at a time."""
    if not cache.add("fusion:ship-journals", "1", SHIP_LOCK_SECONDS):
        return "already running"
    try:
        journals.batches_recover_interrupted()
        closed = journals.batches_close_due()
        submitted = polled = 0
        for batch in JournalBatch.objects.filter(state=JournalBatch.State.CLOSED).select_related("connection"):
            _, delimiter = _layout(batch.connection)
            journals.batch_submit(batch_id=batch.pk, client_factory=fusion_client_for, delimiter=delimiter)
            submitted += 1
        due = JournalBatch.objects.filter(state=JournalBatch.State.RUNNING, next_poll_at__lte=timezone.now())
        for batch_id in due.values_list("pk", flat=True):
            journals.batch_poll(batch_id=batch_id, client_factory=fusion_client_for)
            polled += 1
    finally:
        cache.delete("fusion:ship-journals")
    return f"{len(closed)} closed, {submitted} submitted, {polled} polled"


@shared_task(name="fusion.refresh_reference_all", ignore_result=True)
def refresh_reference_all() -> int:
    """Beat: one reference refresh task per enabled connection."""
    return fan_out_per_connection(refresh_reference)


@shared_task(name="fusion.refresh_reference", ignore_result=True)
def refresh_reference(connection_id: int) -> str:
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection missing or disabled"
    names, delimiter = _layout(connection)
    try:
        counts = reference.reference_refresh(
            connection=connection, client=fusion_client_for(connection), segment_names=names, delimiter=delimiter
        )
    except ConnectorError as exc:
        logger.warning(
            "Reference refresh of %s failed: %s", connection.slug, exc, extra={"connection_id": connection_id}
        )
        return f"failed: {type(exc).__name__}"
    return f"{counts['sites']} sites, {counts['combinations']} combinations"
