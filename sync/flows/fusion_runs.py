"""One run of a stream of the sync from Fusion: its row (counts, status, watermark), its lock, the clients it calls
(each request counted), retries of transient failures, and the audit of every write. The streams live in
fusion_customers, fusion_items and fusion_gl_stream; this module holds what they share and `fusion_sync_run`, the
one service the task and the command call."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record, audit_record_many
from commerce.client import CommerceClient
from connector.models import Connection
from core.errors import AuthError, ConnectorError, OutcomeUnknownError, PermanentError, TransientError
from core.http import clock
from core.locks import single_run
from fusion.client import FusionApi
from fusion.throttle import paced_client

from ..models import FusionSyncSettings, Stream, SyncLink, SyncRun, SyncStream

logger = logging.getLogger(__name__)

ACTOR = "system:fusion-sync"
BATCH_SIZE = 500  # Fusion records handled, and settled, between two saves of the watermark
WRITE_TRIES = 3
BACKOFF_BASE = 1.0  # seconds, doubled per try, full jitter, capped by MAX_BACKOFF
MAX_BACKOFF = 10.0
STOP_AFTER_TRANSIENT = 10  # records failing in a row on a transient error: the system is down, stop the run
LINK_FIELDS = (
    "state",
    "fusion_label",
    "fusion_data",
    "fusion_hash",
    "fusion_updated_at",
    "last_error",
    "attempts",
    "written",
    "rules_version",
    "facts",
    "seen_at",
    "updated_at",
)

T = TypeVar("T")
Progress = Callable[[str, dict[str, Any]], None]


class NotConfigured(PermanentError):
    """The stream lacks a setting it needs; nothing was read or written."""


class AlreadyRunning(Exception):
    """Another run of this connection and stream holds the lock."""


class StopRun(Exception):
    """The run cannot go on (credentials refused, a system down): the watermark stays where it was settled."""


@dataclass
class Counts:
    read: int = 0
    written: int = 0
    created: int = 0
    unchanged: int = 0
    failed: int = 0
    unmatched: int = 0
    missing: int = 0
    inactive: int = 0
    fusion_requests: int = 0
    commerce_requests: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        return (
            f"read {self.read}, written {self.written} (created {self.created}), unchanged {self.unchanged}, "
            f"failed {self.failed}, unmatched {self.unmatched}, missing {self.missing}, inactive {self.inactive}; "
            f"requests: Fusion {self.fusion_requests}, Commerce {self.commerce_requests}"
        )


def _count_requests(transport: Any, counts: Counts, name: str) -> None:
    """Count every HTTP request a client's transport sends (retries included; token requests are not API calls)."""
    send = transport.request
    lock = threading.Lock()  # writes go out from a few threads at once

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            setattr(counts, name, getattr(counts, name) + 1)
        return send(*args, **kwargs)

    transport.request = counted


@dataclass
class Run:
    """A run in progress: what a stream needs to read, decide, write and report."""

    connection: Connection
    stream: str
    settings: FusionSyncSettings
    fusion: FusionApi
    commerce: CommerceClient
    dry_run: bool = False
    full: bool = False
    actor: str = ACTOR
    progress: Progress | None = None
    deadline: float | None = None
    started_at: datetime = field(default_factory=timezone.now)
    counts: Counts = field(default_factory=Counts)
    row: SyncRun | None = None
    partial: bool = False
    transient_in_a_row: int = 0
    moved: bool = False  # the watermark moved: the run is kept as a SyncRun row even when it wrote nothing else
    links: list[SyncLink] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)

    def note(self, event: str, **data: Any) -> None:
        if self.progress is not None:
            self.progress(event, {**data, "counts": self.counts, "stream": self.stream})

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def stream_row(self) -> SyncStream:
        row = SyncStream.objects.filter(connection=self.connection, stream=self.stream).first()
        if row is None:
            row = SyncStream(connection=self.connection, stream=self.stream)
            if not self.dry_run:
                row.save()
        return row

    def advance_watermark(self, mark: datetime | None) -> None:
        """Move the stream's watermark forward to `mark` (never back); nothing on a dry run."""
        if mark is None or self.dry_run:
            return
        with transaction.atomic():
            stream = self.stream_row()
            current = SyncStream.objects.select_for_update().values_list("watermark", flat=True).get(pk=stream.pk)
            if current is not None and mark <= current:
                return
            SyncStream.objects.filter(pk=stream.pk).update(watermark=mark)
        self.moved = True
        self.note("watermark", watermark=mark)

    def call(self, what: Callable[[], T], *, idempotent: bool) -> T:
        """Call Commerce, retrying a transient failure (429, 5xx, timeouts) with backoff. A write that may have
        happened (lost answer) is retried only when it is idempotent (a PUT of values), never a create."""
        attempt = 0
        while True:
            attempt += 1
            try:
                result = what()
            except TransientError as exc:
                unknown = isinstance(exc, OutcomeUnknownError)
                if attempt >= WRITE_TRIES or (unknown and not idempotent):
                    raise
                clock.sleep(self._backoff(exc, attempt))
                continue
            self.transient_in_a_row = 0
            return result

    @staticmethod
    def _backoff(exc: TransientError, attempt: int) -> float:
        if exc.retry_after is not None:
            return min(float(exc.retry_after), MAX_BACKOFF)
        return random.uniform(0, min(MAX_BACKOFF, BACKOFF_BASE * 2 ** (attempt - 1)))

    def write_all(self, writes: list[Callable[[], Any]]) -> list[ConnectorError | None]:
        """Send a batch's Commerce writes, CONNECTOR_FUSION_SYNC_COMMERCE_CONCURRENCY at a time, each retried on a
        transient failure; for each, None or the error it ended with. Only HTTP happens in the threads: what the
        outcomes mean for the database is kept by the caller, in order."""

        def one(write: Callable[[], Any]) -> ConnectorError | None:
            try:
                self.call(write, idempotent=True)
            except ConnectorError as exc:
                return exc
            return None

        workers = min(len(writes), max(1, int(django_settings.CONNECTOR_FUSION_SYNC_COMMERCE_CONCURRENCY)))
        if workers <= 1:
            return [one(write) for write in writes]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fusion-sync-write") as pool:
            return list(pool.map(one, writes))

    def record_failure(self, exc: ConnectorError) -> None:
        """One record failed: count it; stop the run when the credentials are refused or the failures say the
        system is down."""
        self.counts.failed += 1
        if isinstance(exc, AuthError):
            raise StopRun(f"Commerce refused the credentials: {exc}") from exc
        if isinstance(exc, TransientError):
            self.transient_in_a_row += 1
            if self.transient_in_a_row >= STOP_AFTER_TRANSIENT:
                raise StopRun(f"{self.transient_in_a_row} records in a row failed on transient errors: {exc}") from exc
        else:
            self.transient_in_a_row = 0

    def audit_write(
        self, *, action: str, target_type: str, target_id: str, before: dict, after: dict, fusion_key: str
    ) -> None:
        """Audit one write (kept with the batch, inserted by flush())."""
        if self.dry_run:
            return
        self.audits.append(
            {
                "action": f"fusion_sync.{action}",
                "actor": self.actor,
                "connection": self.connection.pk,
                "target_type": target_type,
                "target_id": target_id,
                "message": f"{target_type} {target_id} {action.split('_')[-1]} from Fusion {fusion_key}: "
                + ", ".join(sorted(after)),
                "data": {"before": before, "after": after, "fusion_key": fusion_key},
            }
        )

    @property
    def row_id(self) -> int | None:
        return self.row.pk if self.row else None

    def did_something(self) -> bool:
        """Whether the run changed or found anything worth a run row: a write, a failure, a missing record, a
        moved watermark, a stop at the time limit, or links kept (its row is made then). A run that only confirmed
        that nothing changed is not kept."""
        c = self.counts
        return bool(
            c.written or c.created or c.failed or c.missing or self.moved or self.partial or self.row is not None
        )

    def row_ensure(self) -> SyncRun:
        """The run's SyncRun row, made when the run first has something to keep (a check that finds nothing has
        none: it is kept in the cache, see last_checked)."""
        if self.row is None:
            self.row = SyncRun.objects.create(
                connection=self.connection,
                stream=self.stream,
                full=self.full,
                actor=self.actor[:150],
                started_at=self.started_at,
            )
        return self.row

    def keep(self, link: SyncLink) -> None:
        """A link whose outcome is to be kept: saved by flush(), with the batch."""
        if not self.dry_run and all(kept is not link for kept in self.links):
            self.links.append(link)

    def flush(self) -> None:
        """Write the batch's links (one bulk insert, one bulk update) and audit events (one insert), with the run's
        row made first when there are any."""
        if (self.links or self.audits) and not self.dry_run:
            run_id = self.row_ensure().pk
            for audit in self.audits:
                audit["data"]["run"] = run_id
        if self.links:
            now = timezone.now()
            for link in self.links:
                link.updated_at = now
            SyncLink.objects.bulk_create([link for link in self.links if link.pk is None], batch_size=500)
            SyncLink.objects.bulk_update([link for link in self.links if link.pk is not None], LINK_FIELDS, 200)
            self.links.clear()
        if self.audits:
            audit_record_many(self.audits)
            self.audits.clear()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def sync_settings(connection: Connection, *, create: bool = True) -> FusionSyncSettings:
    found = FusionSyncSettings.objects.filter(connection=connection).first()
    if found is not None:
        return found
    found = FusionSyncSettings(connection=connection)
    if create:
        found.save()
    return found


def _runner(stream: str) -> Callable[[Run], None]:
    # Imported here: each stream module imports this one for Run and its helpers.
    from .fusion_customers import customers_run
    from .fusion_gl_stream import gl_run
    from .fusion_items import items_run

    runners: dict[str, Callable[[Run], None]] = {
        Stream.CUSTOMERS: customers_run,
        Stream.ITEMS: items_run,
        Stream.GL: gl_run,
    }
    if stream not in runners:
        raise NotConfigured(f"{stream!r} is not a stream: customers, items or gl.")
    return runners[stream]


def configuration_problem(settings: FusionSyncSettings, stream: str) -> str:
    """What the stream lacks before it can run ('' when nothing)."""
    if stream == Stream.ITEMS and not settings.item_organization:
        return (
            f"Set the item master organisation in the sync settings of {settings.connection.slug} (Sync > Sync "
            "settings, e.g. M1) before syncing items."
        )
    return ""


def lock_key(connection_id: int, stream: str) -> str:
    return f"fusion-sync:{connection_id}:{stream}"


def fusion_sync_run(
    *,
    connection: Connection,
    stream: str,
    dry_run: bool = False,
    full: bool = False,
    actor: str = ACTOR,
    progress: Progress | None = None,
    max_seconds: float | None = None,
    fusion: FusionApi | None = None,
    commerce: CommerceClient | None = None,
) -> Run:
    """Run one stream of one connection once. A dry run reads both systems and reports what would change through
    `progress`, and writes nothing anywhere (no Commerce write, no database row). A real run holds the stream's
    lock (AlreadyRunning when another holds it); when it writes, fails, stops at its limit or moves the watermark
    it is a SyncRun row and one audit event, and a run that finds nothing to do writes nothing (its end is kept
    in the cache: last_checked). `full` reads everything
    and compares with Commerce's current values instead of with what the sync last wrote."""
    runner = _runner(stream)
    run = Run(
        connection=connection,
        stream=stream,
        settings=sync_settings(connection, create=not dry_run),
        fusion=fusion or paced_client(connection),
        commerce=commerce or CommerceClient.for_connection(connection),
        dry_run=dry_run,
        full=full,
        actor=actor,
        progress=progress,
        deadline=time.monotonic() + max_seconds if max_seconds else None,
    )
    problem = configuration_problem(run.settings, stream)
    if problem:
        raise NotConfigured(problem)
    _count_requests(_transport_of(run.fusion), run.counts, "fusion_requests")
    _count_requests(run.commerce.transport, run.counts, "commerce_requests")
    if dry_run:
        with transaction.atomic():  # a safety net: whatever a dry run might write is rolled back
            runner(run)
            transaction.set_rollback(True)
        return run
    seconds = int(max_seconds or django_settings.CELERY_TASK_TIME_LIMIT) + 60
    with single_run(lock_key(connection.pk, stream), seconds=seconds) as mine:
        if not mine:
            raise AlreadyRunning(f"A {stream} run of {connection.slug} is already going on.")
        _run_recorded(run, runner)
    return run


def _transport_of(client: Any) -> Any:
    inner = getattr(client, "_client", client)  # a PacedClient wraps the FusionClient
    return inner.transport


def last_checked_key(connection_id: int, stream: str) -> str:
    return f"fusion-sync:last-checked:{connection_id}:{stream}"


def last_checked(connection_id: int, stream: str) -> dict[str, Any] | None:
    """When a run of the stream last ended finding nothing to do, and its counts: kept in the cache, not the
    database, so that such a check writes no row. None when the cache has forgotten it."""
    return cache.get(last_checked_key(connection_id, stream))


def _run_recorded(run: Run, runner: Callable[[Run], None]) -> None:
    try:
        runner(run)
        run.flush()
    except Exception as exc:
        _finish(run, status=SyncRun.Status.FAILED, error=str(exc))
        raise
    if run.did_something():
        _finish(run, status=SyncRun.Status.PARTIAL if run.partial else SyncRun.Status.DONE)
    else:
        cache.set(
            last_checked_key(run.connection.pk, run.stream),
            {"at": timezone.now(), "counts": run.counts.as_dict()},
            timeout=None,
        )


def _finish(run: Run, *, status: str, error: str = "") -> None:
    row = run.row_ensure()
    row.status = status
    row.error = error[:4000]
    row.finished_at = timezone.now()
    row.watermark = run.stream_row().watermark
    for name, value in run.counts.as_dict().items():
        setattr(row, name, value)
    row.save()
    failed = status == SyncRun.Status.FAILED
    audit_record(
        action="fusion_sync.run",
        actor=run.actor,
        connection=run.connection,
        target=row,
        outcome=AuditEvent.Outcome.FAILURE if failed else AuditEvent.Outcome.SUCCESS,
        message=f"Sync from Fusion, {run.stream}: {row.get_status_display()}; {run.counts.line()}"
        + (f"; {error}" if error else ""),
        data=run.counts.as_dict() | {"status": status, "full": run.full},
    )
    if failed:
        logger.warning("Sync from Fusion of %s (%s) failed: %s", run.connection.slug, run.stream, error)
