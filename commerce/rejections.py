"""Refused webhook requests, counted in memory and written every few seconds: a flood of bad signatures costs the
database one statement per (connection, reason, minute) and flush, not one write per request.

Each web process keeps its own counts (bounded: at most MAX_KEYS rows wait at once; beyond that a refusal is
only logged as dropped) and a daemon thread writes them every CONNECTOR_REJECTION_FLUSH_SECONDS, and once more
when the process exits. What a killed process had not written is lost: these are counters for the admin, not a
ledger.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils import timezone

from .sql import rejections_add

logger = logging.getLogger(__name__)

MAX_KEYS = 1000


class RejectionCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int | None, str, datetime], list] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self.dropped = 0
        os.register_at_fork(after_in_child=self._forget)
        atexit.register(self._flush_at_exit)

    def _forget(self) -> None:
        """A forked child (a gunicorn worker) starts with nothing counted and no thread."""
        self._counts = {}
        self._lock = threading.Lock()
        self._thread = None
        self._wake = threading.Event()
        self.dropped = 0

    def add(self, *, connection_id: int | None, reason: str, source_ip: str | None, detail: str) -> None:
        now = timezone.now()
        key = (
            f"c{connection_id}" if connection_id is not None else "unknown",
            connection_id,
            reason,
            now.replace(second=0, microsecond=0),
        )
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                if len(self._counts) >= MAX_KEYS:
                    self.dropped += 1
                    return
                entry = self._counts[key] = [0, now, source_ip, ""]
            entry[0] += 1
            entry[1:] = [now, source_ip, detail[:200]]
        self._ensure_thread()

    def _flush_at_exit(self) -> None:
        """A process that stops (a gunicorn worker recycled or shut down) writes what it counted."""
        if self._counts or self.dropped:
            with contextlib.suppress(Exception):
                self.flush()

    def clear(self) -> None:
        """Forget what was counted and not written (tests)."""
        with self._lock:
            self._counts, self.dropped = {}, 0

    def pending(self) -> int:
        with self._lock:
            return sum(entry[0] for entry in self._counts.values())

    def flush(self) -> int:
        """Write what was counted; the number of refusals written. On a database error the counts are kept for
        the next flush (up to MAX_KEYS rows)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.warning("%s refused webhook requests were not counted: the counter was full", dropped)
        if not counts:
            return 0
        rows = [(*key, *entry) for key, entry in counts.items()]
        try:
            rejections_add(connections[DEFAULT_DB_ALIAS], rows)
        except DatabaseError:
            logger.warning("Refused webhook requests could not be counted now; trying again", exc_info=True)
            with self._lock:
                for key, entry in counts.items():
                    kept = self._counts.setdefault(key, [0, *entry[1:]]) if len(self._counts) < MAX_KEYS else None
                    if kept is not None:
                        kept[0] += entry[0]
            return 0
        return sum(entry[0] for entry in counts.values())

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-rejections", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(float(settings.CONNECTOR_REJECTION_FLUSH_SECONDS))
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the thread die
                logger.exception("Flushing the webhook rejection counters failed")
            finally:
                # This thread's own database connection: closed after every flush, so none is left idle.
                connections.close_all()


rejections = RejectionCounter()


def rejection_count(*, connection_id: int | None, reason: str, source_ip: str | None = None, detail: str = "") -> None:
    """Count a refused request (never its body). Written to DeliveryRejection by the next flush."""
    rejections.add(connection_id=connection_id, reason=reason, source_ip=source_ip, detail=detail)


def rejections_flush() -> int:
    """Write the counted refusals now (tests, shutdown)."""
    return rejections.flush()
