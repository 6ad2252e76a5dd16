"""Wake-ups: messages that tell a worker to look at a record, or to read a stored webhook delivery. Sent by task
name, so nothing below `sync` imports a task module; losing one is harmless, since the relay finds due records
and unread deliveries in Postgres."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from celery import current_app

logger = logging.getLogger(__name__)

PROCESS_RECORD = "connector.process_record"
WAKE_RECORDS = "connector.wake_records"
REFRESH_REFERENCE = "fusion.refresh_reference"
DELIVERY_RECORD = "commerce.delivery_record"
# Reading a stored delivery into its record takes milliseconds; posting a record can wait on Fusion for seconds.
# Both are on the "posting" queue: a record's wake-up goes at a lower priority (Redis takes 0 first, then 3, 6,
# 9), so deliveries are read, and their records exist, while a backlog of postings waits behind them.
RECORD_PRIORITY = 6


def task_send(name: str, *args: object) -> bool:
    """Queue the task `name` with these arguments (ids and scalars only). False when the broker is unavailable."""
    try:
        current_app.send_task(name, args=list(args), retry=False)
    except Exception:  # broker down
        logger.warning("Broker unavailable; %s not queued", name)
        return False
    return True


def record_wake(*, record_id: int) -> None:
    """Send a wake-up to a worker. Losing it is harmless: the relay finds due records in Postgres."""
    records_wake(record_ids=[record_id])


def records_wake(*, record_ids: list[int]) -> bool:
    """Wake workers for these records: one message per record, or, for many, one message that a worker fans
    out (publishing costs the sender CPU; the web process should pay for one message, not hundreds). False
    when the broker is unavailable."""
    if not record_ids:
        return True
    try:
        if len(record_ids) == 1:
            current_app.send_task(PROCESS_RECORD, args=[record_ids[0]], retry=False, priority=RECORD_PRIORITY)
        else:
            current_app.send_task(WAKE_RECORDS, args=[list(record_ids)], retry=False, priority=RECORD_PRIORITY)
    except Exception:  # broker down: the relay will pick the records up
        logger.warning(
            "Broker unavailable; %s record(s) wait for the relay", len(record_ids), extra={"record_ids": record_ids}
        )
        return False
    return True


def deliveries_wake(*, delivery_ids: list[int]) -> bool:
    """Ask a worker to read these stored deliveries into records: one message for the batch. Losing it is
    harmless: the relay finds unread deliveries in Postgres. False when the broker is unavailable."""
    if not delivery_ids:
        return True
    try:
        current_app.send_task(DELIVERY_RECORD, args=[list(delivery_ids)], retry=False)
    except Exception:  # broker down: the relay will pick the deliveries up
        logger.warning("Broker unavailable; %s delivery(ies) wait for the relay", len(delivery_ids))
        return False
    return True


def _send_records(ids: list[int]) -> bool:
    return records_wake(record_ids=ids)


def _send_deliveries(ids: list[int]) -> bool:
    return deliveries_wake(delivery_ids=ids)


class _Waker:
    """Sends wake-ups from a background thread, off the request path. A broker that is down costs a publish
    ~CELERY_BROKER_CONNECTION_TIMEOUT (seconds, even on a refused port): that must never hold up a Commerce
    checkout. After a slow or failed publish, wake-ups are skipped for a few seconds; the relay picks those
    records up from Postgres (the broker only carries wake-ups)."""

    SLOW_SECONDS = 0.5
    SKIP_SECONDS = 5.0
    BATCH = 500
    # A fifth of a second on top of a posting that takes seconds; at a few hundred orders a second per web
    # process, five publishes a second instead of twenty.
    LINGER_SECONDS = 0.2

    def __init__(self, send: Callable[[list[int]], bool] = _send_records, *, name: str = "commerce-wake") -> None:
        self._send = send
        self._name = name
        self._sent_before = False
        self._queue: queue.Queue[int] = queue.Queue(maxsize=10_000)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.skip_until = 0.0
        # A forked child (a gunicorn or Celery worker) has neither the parent's thread nor a use for its queue.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._queue = queue.Queue(maxsize=10_000)
        self._lock = threading.Lock()
        self._thread = None
        self._sent_before = False

    def wake(self, item_id: int) -> None:
        if time.monotonic() < self.skip_until:
            return
        self._ensure_thread()
        with contextlib.suppress(queue.Full):  # a full queue: the relay will find it
            self._queue.put_nowait(item_id)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until queued wake-ups are sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # A publish costs about a millisecond of CPU, most of a request's own cost: under load, gather what
            # arrives within a short linger and send it as one message (a worker fans it out). Sleep through
            # the linger rather than wait on the queue: a waiting thread is woken by every put, which cost each
            # request a thread switch and a GIL hand-over (bench/README.md); a sleeping one costs a put nothing.
            time.sleep(self.LINGER_SECONDS)
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if time.monotonic() >= self.skip_until:
                    started = time.monotonic()
                    sent = self._send(batch)  # logs and swallows a broker error
                    # A failed publish, or a slow one once connected (the first also connects), means the broker
                    # is down or struggling: leave the next few seconds to the relay.
                    slow = time.monotonic() - started > self.SLOW_SECONDS and self._sent_before
                    if not sent or slow:
                        self.skip_until = time.monotonic() + self.SKIP_SECONDS
                    self._sent_before = self._sent_before or sent
            except Exception:  # never let the thread die
                logger.exception("Wake-up of %s %s failed", self._name, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()


waker = _Waker()
# Deliveries: a shorter linger, since a record is made only after its delivery is read (the time from a 200 to
# the record is the linger plus a worker's read); at a few hundred deliveries a second per web process it is
# still ten publishes a second, not hundreds.
delivery_waker = _Waker(_send_deliveries, name="delivery-wake")
delivery_waker.LINGER_SECONDS = 0.1


def wakeups_flush(timeout: float = 10.0) -> None:
    waker.flush(timeout)
    delivery_waker.flush(timeout)
