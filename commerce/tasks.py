"""Thin Celery doors for the Commerce side: ids in, one service call, safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from connector.exceptions import ConnectorError
from connector.models import Connection
from connector.tasks import fan_out_per_connection

from . import services

logger = logging.getLogger(__name__)

BACKFILL_LOCK_SECONDS = 600


@shared_task(name="commerce.backfill_all", ignore_result=True)
def backfill_all() -> int:
    """Beat: one backfill task per enabled connection."""
    return fan_out_per_connection(backfill_connection)


@shared_task(name="commerce.backfill_connection", ignore_result=True)
def backfill_connection(connection_id: int) -> str:
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        return "connection missing or disabled"
    lock = f"commerce:backfill:{connection_id}"
    if not cache.add(lock, "1", BACKFILL_LOCK_SECONDS):  # the previous run is still going
        return "already running"
    try:
        result = services.backfill_run(connection=connection, actor="system:backfill")
    except ConnectorError as exc:  # audited by the service; the next beat tick tries again
        logger.warning("Backfill of %s failed: %s", connection.slug, exc, extra={"connection_id": connection_id})
        return f"failed: {type(exc).__name__}"
    finally:
        cache.delete(lock)
    return f"{result.created} new, {result.known} known, {result.unreadable} unreadable"


@shared_task(name="commerce.purge_bodies", ignore_result=True)
def purge_bodies() -> int:
    return services.deliveries_purge()
