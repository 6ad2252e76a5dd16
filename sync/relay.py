"""The relay: wake records whose next attempt is due or whose lease expired. This is what makes a lost
broker message (or a broker that was down at receipt) harmless."""

from __future__ import annotations

import logging

from django.core.cache import cache

from connector.selectors import due_record_ids
from connector.wakeups import record_wake

logger = logging.getLogger(__name__)


# A due record is woken at most once per window until a worker picks it up: while a backlog drains, the
# relay's next runs would otherwise queue the same ids again and again behind the ones still waiting.
REWAKE_SECONDS = 60


def _woken_key(record_id: int) -> str:
    return f"relay:woken:{record_id}"


def relay_picked_up(*, record_id: int) -> None:
    """A worker took the record: the relay may wake it again when it next falls due."""
    cache.delete(_woken_key(record_id))


def relay_due(*, limit: int) -> int:
    woken = 0
    for record_id in due_record_ids(limit=limit):
        if cache.add(_woken_key(record_id), 1, REWAKE_SECONDS):
            record_wake(record_id=record_id)
            woken += 1
    if woken:
        logger.info("Relay woke %s due records", woken)
    return woken
