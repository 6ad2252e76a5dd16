"""The relay: wake records whose next attempt is due or whose lease expired. This is what makes a lost
broker message (or a broker that was down at receipt) harmless."""

from __future__ import annotations

import logging

from django.db.models import Q
from django.utils import timezone

from .models import Record

logger = logging.getLogger(__name__)


def due_record_ids(*, limit: int) -> list[int]:
    now = timezone.now()
    return list(
        Record.objects.filter(state__in=Record.ACTIVE_STATES, next_attempt_at__lte=now, connection__enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def relay_due(*, limit: int) -> int:
    from .services import record_wake

    ids = due_record_ids(limit=limit)
    for record_id in ids:
        record_wake(record_id=record_id)
    if ids:
        logger.info("Relay woke %s due records", len(ids))
    return len(ids)
