"""The relay: wake records whose next attempt is due or whose lease expired, and have stored webhook deliveries
that no worker read after a grace period read. This is what makes a lost broker message (or a broker that was
down at receipt) harmless: the state is in Postgres, a message is only a wake-up."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache

from commerce.deliveries import deliveries_unread
from connector.selectors import due_record_ids
from connector.wakeups import deliveries_wake, records_wake

logger = logging.getLogger(__name__)


# A due record is woken at most once per window until a worker picks it up: while a backlog drains, the
# relay's next runs would otherwise queue the same ids again and again behind the ones still waiting. A record
# woken behind others (its place among the due ones) waits for them: its window is longer by the time the
# workers take to reach it at RELAY_REACH_PER_SECOND, the slowest drain the relay counts on, so that a backlog of
# thousands is not woken a second time while its first wake-ups are still queued.
REWAKE_SECONDS = 60
RELAY_REACH_PER_SECOND = 5
# Due records woken by one message (a worker fans it out), and at most this many pages in a run.
RELAY_PAGE = 500
RELAY_MAX_PAGES = 40


def _woken_key(record_id: int) -> str:
    return f"relay:woken:{record_id}"


def relay_picked_up(*, record_id: int) -> None:
    """A worker took the record: the relay may wake it again when it next falls due."""
    cache.delete(_woken_key(record_id))


def relay_due(*, limit: int) -> int:
    """Wake every due record, up to `limit`, the earliest due first: a page of RELAY_PAGE ids to a message (a
    worker fans it out), each id at most once per window until a worker picks it up. Every due record, not a
    page per run: after an outage a run's wake-ups are what keeps the workers at the Fusion ceiling until the
    next run. How many were woken."""
    ids = due_record_ids(limit=limit)
    woken = 0
    for start in range(0, len(ids), RELAY_PAGE):
        page = ids[start : start + RELAY_PAGE]
        window = REWAKE_SECONDS + start // RELAY_REACH_PER_SECOND
        recent = cache.get_many([_woken_key(record_id) for record_id in page])
        fresh = [i for i in page if _woken_key(i) not in recent and cache.add(_woken_key(i), 1, window)]
        if fresh:
            records_wake(record_ids=fresh)
            woken += len(fresh)
    if woken:
        logger.info("Relay woke %s due records", woken)
    return woken


def _delivery_woken_key(delivery_id: int) -> str:
    return f"relay:delivery:{delivery_id}"


def relay_deliveries_picked_up(*, delivery_ids: list[int]) -> None:
    """A worker is reading these deliveries: the relay may drive one again if it is still unread later."""
    cache.delete_many([_delivery_woken_key(delivery_id) for delivery_id in delivery_ids])


def relay_unread_deliveries(*, limit: int) -> int:
    """Deliveries stored more than CONNECTOR_DELIVERY_GRACE_SECONDS ago that no worker has read: one message
    for all of them (each id at most once per window until a worker picks it up)."""
    grace = timedelta(seconds=settings.CONNECTOR_DELIVERY_GRACE_SECONDS)
    ids = [
        delivery_id
        for delivery_id in deliveries_unread(older_than=grace, limit=limit)
        if cache.add(_delivery_woken_key(delivery_id), 1, REWAKE_SECONDS)
    ]
    deliveries_wake(delivery_ids=ids)
    if ids:
        logger.info("Relay drove %s unread webhook deliveries", len(ids))
    return len(ids)
