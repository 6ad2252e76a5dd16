"""Commerce-side services: accept a verified webhook delivery, count refused ones, backfill missed documents
from the REST API, purge raw bodies after the retention period."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.db import connection as db_connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_insert_from, audit_record
from connector.documents import SalesDocument
from connector.models import PLACEHOLDER_PREFIX, Connection, Record
from connector.services import (
    record_accept,
    record_fields,
    record_insert_statement,
    record_received_event,
    records_wake,
)

from .models import Delivery, DeliveryRejection
from .payloads import (
    CREDIT_MEMO,
    INVOICE,
    ORDER,
    UnreadablePayload,
    document_from_entity,
    envelope_parse,
)
from .verifiers import Verification, commerce_setting

logger = logging.getLogger(__name__)


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

    def __init__(self) -> None:
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

    def wake(self, record_id: int) -> None:
        if time.monotonic() < self.skip_until:
            return
        self._ensure_thread()
        with contextlib.suppress(queue.Full):  # a full queue: the relay will find the record
            self._queue.put_nowait(record_id)

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
                self._thread = threading.Thread(target=self._run, name="commerce-wake", daemon=True)
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
                    records_wake(record_ids=batch)  # logs and swallows a broker error
                    if time.monotonic() - started > self.SLOW_SECONDS:
                        self.skip_until = time.monotonic() + self.SKIP_SECONDS
            except Exception:  # never let the thread die
                logger.exception("Wake-up of records %s failed", batch)
            finally:
                for _ in batch:
                    self._queue.task_done()


waker = _Waker()


def wakeups_flush(timeout: float = 10.0) -> None:
    waker.flush(timeout)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    delivery_id: int
    record_id: int | None = None
    note: str = ""


def delivery_accept(
    *,
    connection: Connection,
    body: bytes,
    payload: Any,
    verification: Verification,
    headers: Mapping[str, str],
    request_id: str = "",
    source_ip: str | None = None,
    event_hint: str = "",
) -> DeliveryOutcome:
    """Store one verified delivery and, when it carries a document, create or attach its record in the same
    transaction; a worker is woken on commit. Never raises for a payload it cannot read: that delivery is kept
    as unreadable for review (a signed order we cannot read is still an order)."""
    envelope, problem = None, ""
    try:
        envelope = envelope_parse(payload, hint=event_hint)
    except UnreadablePayload as exc:
        problem = str(exc)
    request_id = (request_id or (envelope.event_id if envelope else ""))[:128]
    event_name = (envelope.event_name if envelope else "")[:150]
    row = {
        "connection": connection,
        "verifier": verification.summary[:150],
        "event_name": event_name,
        "request_id": request_id,
        "source_ip": source_ip,
        "headers": dict(headers),
        "body": body,
    }
    actor = f"system:webhook:{verification.scheme}" if verification.scheme else "system:webhook"
    document, unreadable = None, problem
    if envelope is not None and envelope.kind is not None:
        try:
            document = document_from_entity(envelope.kind, envelope.entity or {})
        except UnreadablePayload as exc:
            unreadable = str(exc)
    database = connections[DEFAULT_DB_ALIAS]  # once: every use of the `connection` proxy is a thread-local lookup
    if document is not None and document.entity_id and database.vendor == "postgresql":
        write = functools.partial(_accept_in_one_statement, database, connection, document, row, actor)
        stored = _on_a_live_connection(database, write)
        if stored is not None:
            record_id, delivery_id = stored
            if database.in_atomic_block:
                database.on_commit(lambda: waker.wake(record_id))
            else:  # autocommit: the statement is committed
                waker.wake(record_id)
            return DeliveryOutcome(Delivery.Status.ACCEPTED, delivery_id, record_id)
    # Everything else (a duplicate, an order known so far by its number, nothing to record, SQLite): one
    # transaction through the ORM services.
    with transaction.atomic():
        if document is None:
            if envelope is not None and envelope.kind is None:
                note = f"event type {event_name!r} is not handled"
                return _store_without_record(row, Delivery.Status.IGNORED, note, actor)
            return _store_without_record(row, Delivery.Status.UNREADABLE, unreadable, actor)
        try:
            document = _keyed(connection, document)
        except UnreadablePayload as exc:
            return _store_without_record(row, Delivery.Status.UNREADABLE, str(exc), actor)
        accepted = record_accept(connection=connection, document=document, actor=actor, correlation_id=request_id)
        record = accepted.record
        status = Delivery.Status.ACCEPTED if accepted.created else Delivery.Status.DUPLICATE
        delivery_id = _delivery_insert(row, status=status, record_id=record.pk)
        if accepted.created:
            transaction.on_commit(lambda: waker.wake(record.pk))
    return DeliveryOutcome(status, delivery_id, record.pk)


def _on_a_live_connection(conn: Any, write: Callable[[], Any]) -> Any:
    """Run one autocommit write without Django's per-request health check (CONN_HEALTH_CHECKS: a `SELECT 1`
    round trip before the first query of every request, on top of the webhook's one statement), and retry it
    once on a fresh connection when the kept one turns out dead (a restarted server, an idle timeout): a
    delivery is no more lost to a stale connection than with the check, including one that dies between the
    check and the write. A retried statement whose first run did commit finds its record: it is then stored as
    a duplicate delivery of that record. Inside a transaction the write is simply run."""
    if conn.in_atomic_block or not conn.health_check_enabled or conn.connection is None:
        return write()
    conn.health_check_done = True  # the write itself is the check
    try:
        return write()
    except (OperationalError, InterfaceError):
        if conn.is_usable():
            raise
        logger.warning("The database connection was dead at a webhook write: retrying once on a new one")
        conn.close()
        return write()


def _accept_in_one_statement(
    database: Any, connection: Connection, document: SalesDocument, row: dict[str, Any], actor: str
) -> tuple[int, int] | None:
    """The common case, a new document, as ONE statement (PostgreSQL): the record, its audit event and the
    delivery are inserted together or not at all, in one round trip, so a webhook costs about what a bare
    INSERT does. None when the record was not created (already known, or an order placeholder must take
    this entity id): the caller's transactional path handles those."""
    fields = record_fields(connection=connection, document=document, source=Record.Source.WEBHOOK, serialised=True)
    placeholder = f"{PLACEHOLDER_PREFIX}{document.increment_id}"[:64] if document.kind == ORDER else ""
    record_sql, record_params = record_insert_statement(
        fields, unless_placeholder=placeholder if document.increment_id else ""
    )
    audit_sql, audit_params = audit_insert_from(
        source="new_record",
        target_id_column="id",
        actor=actor,
        connection=connection,
        correlation_id=row["request_id"],
        **record_received_event(document=document, source=Record.Source.WEBHOOK),
    )
    delivery_sql, delivery_params = _delivery_insert_statement(
        row, status=Delivery.Status.ACCEPTED, record_id_sql="new_record.id", source="new_record"
    )
    sql = (
        f"WITH new_record AS ({record_sql}), new_audit AS ({audit_sql}), "  # noqa: S608 - composed from builders
        f"new_delivery AS ({delivery_sql} RETURNING id) "
        "SELECT new_record.id, new_delivery.id FROM new_record, new_delivery"
    )
    with database.cursor() as cursor:
        cursor.execute(sql, [*record_params, *audit_params, *delivery_params])
        stored = cursor.fetchone()
    return (stored[0], stored[1]) if stored else None


_INSERT_COLUMNS = (
    "received_at",
    "connection_id",
    "status",
    "verifier",
    "event_name",
    "request_id",
    "source_ip",
    "headers",
    "body",
    "note",
    "record_id",
)


def _delivery_insert_statement(
    row: dict[str, Any], *, status: str, record_id_sql: str = "%s", source: str = ""
) -> tuple[str, list[Any]]:
    """The delivery's INSERT without building a model instance (this runs for every order placed). With
    `source`, the record id comes from that relation (`record_id_sql` names its column)."""
    values: list[Any] = [
        timezone.now(),
        row["connection"].pk,
        status,
        row["verifier"],
        row["event_name"],
        row["request_id"],
        row["source_ip"],
        json.dumps(row["headers"]),
        row["body"],
        "",
    ]
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(['%s'] * len(values))}, {record_id_sql}" + (f" FROM {source}" if source else "")
    )
    return sql, values


def _delivery_insert(row: dict[str, Any], *, status: str, record_id: int | None) -> int:
    sql, values = _delivery_insert_statement(row, status=status)
    with db_connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING id", [*values, record_id])
        return cursor.fetchone()[0]


def _store_without_record(row: dict[str, Any], status: str, note: str, actor: str) -> DeliveryOutcome:
    delivery = Delivery.objects.create(**row, status=status, note=note[:2000])
    if status == Delivery.Status.UNREADABLE:
        action, outcome = "delivery.unreadable", AuditEvent.Outcome.FAILURE
        message = f"Signed delivery kept for review: {note}"
    else:
        action, outcome, message = "delivery.ignored", AuditEvent.Outcome.INFO, note
    _audit(delivery, action, outcome, message, actor)
    return DeliveryOutcome(status, delivery.pk, None, note)


def _audit(delivery: Delivery, action: str, outcome: str, message: str, actor: str) -> None:
    audit_record(
        action=action,
        actor=actor,
        connection=delivery.connection_id,
        target=delivery,
        outcome=outcome,
        message=message,
        data={"event": delivery.event_name, "request_id": delivery.request_id, "record_id": delivery.record_id},
        correlation_id=delivery.request_id,
    )


def _keyed(connection: Connection, document: SalesDocument) -> SalesDocument:
    """Give a document its record key. Orders from "before" hooks have no entity id yet: they are keyed by
    number; when the real id arrives, the placeholder record takes it, so there is still one record."""
    if document.kind != ORDER or not document.increment_id:
        if not document.entity_id:
            raise UnreadablePayload(f"the {document.kind} has no entity_id")
        return document
    placeholder = f"{PLACEHOLDER_PREFIX}{document.increment_id}"[:64]
    if not document.entity_id:
        known = Record.objects.filter(
            connection=connection, kind=document.kind, commerce_number=document.increment_id
        ).values_list("commerce_entity_id", flat=True)
        return dataclasses.replace(document, entity_id=known.first() or placeholder)
    Record.objects.filter(connection=connection, kind=document.kind, commerce_entity_id=placeholder).update(
        commerce_entity_id=document.entity_id
    )
    return document


def rejection_count(
    *, connection: Connection | None, reason: str, source_ip: str | None = None, detail: str = ""
) -> None:
    """Count a refused request: one row per (connection, reason, minute), whatever the volume. Never the body."""
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    table = DeliveryRejection._meta.db_table
    scope = f"c{connection.pk}" if connection is not None else "unknown"
    # One statement whatever the volume; ON CONFLICT is the same in PostgreSQL and SQLite.
    sql = (
        f"INSERT INTO {table} (scope, connection_id, reason, minute, count, last_seen_at, last_source_ip, "  # noqa: S608
        f"last_detail) VALUES (%s, %s, %s, %s, 1, %s, %s, %s) ON CONFLICT (scope, reason, minute) DO UPDATE SET "
        f"count = {table}.count + 1, last_seen_at = excluded.last_seen_at, "
        f"last_source_ip = excluded.last_source_ip, last_detail = excluded.last_detail"
    )
    with db_connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                scope,
                connection.pk if connection else None,
                reason,
                minute,
                now,
                source_ip,
                detail[:200],
            ],
        )


# --- backfill ------------------------------------------------------------------------------------------


@dataclass
class BackfillResult:
    since: datetime
    created: int = 0
    known: int = 0
    unreadable: int = 0
    seen: dict[str, int] = dataclasses.field(default_factory=dict)
    pages: int = 0
    complete: bool = True  # False: stopped at the run's page or time limit, the next run carries on
    resume_from: datetime | None = None  # when not complete: every kind is read up to here
    watermark: datetime | None = None  # the watermark this run saved last (None: left as it was)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "created": self.created,
            "known": self.known,
            "unreadable": self.unreadable,
            "seen": self.seen,
            "pages": self.pages,
            "complete": self.complete,
            "resume_from": self.resume_from.isoformat() if self.resume_from else None,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }


BACKFILL_PAGE_SIZE = 100


def backfill_overlap() -> timedelta:
    return timedelta(seconds=int(commerce_setting("CONNECTOR_BACKFILL_OVERLAP_SECONDS", 300)))


def backfill_first_window() -> timedelta:
    return timedelta(hours=int(commerce_setting("CONNECTOR_BACKFILL_FIRST_HOURS", 24)))


def backfill_max_pages() -> int:
    return int(commerce_setting("CONNECTOR_BACKFILL_MAX_PAGES", 50))


def backfill_max_seconds() -> float:
    # Well inside the task's soft time limit (CELERY_TASK_SOFT_TIME_LIMIT, 300 s by default).
    return commerce_setting("CONNECTOR_BACKFILL_MAX_SECONDS", 150)


def commerce_client(connection: Connection) -> Any:
    from .client import CommerceClient

    return CommerceClient.for_connection(connection)


def backfill_run(
    *,
    connection: Connection,
    since: datetime | None = None,
    actor: Any = "system:backfill",
    client: Any = None,
    now: datetime | None = None,
    max_pages: int | None = None,
    max_seconds: float | None = None,
    page_size: int = BACKFILL_PAGE_SIZE,
) -> BackfillResult:
    """Pull the orders, invoices and credit memos Commerce changed since the watermark (minus an overlap, as
    Commerce stamps updated_at at transaction start) and create records for the ones we do not know, through
    the same normalisation as the webhooks. Known documents are left alone.

    The three searches (keyset-paged, oldest first) advance together, one page at a time from whichever is
    furthest behind, and the watermark is saved after every page: up to where all three are read, or the run's
    start once all are read. It only moves forward. A run stops after `max_pages` pages or `max_seconds`
    (CONNECTOR_BACKFILL_MAX_PAGES / _MAX_SECONDS), and a failed run keeps what it read: the next run carries
    on from the watermark. One audit event per run."""
    now = now or timezone.now()
    overlap = backfill_overlap()
    if since is None:
        mark = connection.commerce_backfill_watermark
        since = (mark - overlap) if mark else (now - backfill_first_window())
    max_pages = backfill_max_pages() if max_pages is None else max_pages
    max_seconds = backfill_max_seconds() if max_seconds is None else max_seconds
    client = client or commerce_client(connection)
    result = BackfillResult(since=since)
    pulls: dict[str, Callable[..., Iterable[dict[str, Any]]]] = {
        ORDER: client.iter_orders,
        INVOICE: client.iter_invoices,
        CREDIT_MEMO: client.iter_creditmemos,
    }
    kinds = list(pulls)
    reached = dict.fromkeys(kinds, since)  # the kinds still being read -> updated_at read up to
    streams: dict[str, Iterator[list[dict[str, Any]]]] = {}
    started = time.monotonic()
    try:
        while reached:
            if result.pages >= max_pages or time.monotonic() - started >= max_seconds:
                result.complete, result.resume_from = False, min(reached.values())
                break
            kind = min(reached, key=lambda k: (reached[k], kinds.index(k)))
            if kind not in streams:
                streams[kind] = _chunks(pulls[kind](since, page_size=page_size), page_size)
            page = next(streams[kind], None)
            if page is None:
                del reached[kind]
            else:
                result.pages += 1
                result.seen[kind] = result.seen.get(kind, 0) + len(page)
                _backfill_page(connection=connection, kind=kind, entities=page, result=result, actor=actor)
                reached[kind] = max(reached[kind], _backfill_read_up_to(page) or reached[kind])
            _backfill_advance(connection, _backfill_mark(reached, since=since, now=now, overlap=overlap), result)
    except Exception as exc:
        audit_record(
            action="commerce.backfill",
            actor=actor,
            connection=connection,
            target=connection,
            outcome=AuditEvent.Outcome.FAILURE,
            message=f"Backfill stopped: {exc}" + _backfill_kept(result),
            data=result.as_dict() | {"error": type(exc).__name__},
        )
        raise
    message = (
        f"Backfill since {since:%Y-%m-%d %H:%M:%S}: {result.created} new, {result.known} already known, "
        f"{result.unreadable} unreadable"
    )
    if not result.complete:
        message += f"; stopped after {result.pages} pages (the run's limit), the next run carries on"
    audit_record(
        action="commerce.backfill",
        actor=actor,
        connection=connection,
        target=connection,
        outcome=AuditEvent.Outcome.SUCCESS,
        message=message + _backfill_kept(result),
        data=result.as_dict(),
    )
    return result


def _backfill_read_up_to(page: list[dict[str, Any]]) -> datetime | None:
    """The updated_at of the page's last row that has one (the search returns rows oldest first)."""
    from .client import updated_at_of

    for entity in reversed(page):
        stamp = updated_at_of(entity)
        if stamp is not None:
            return stamp
    return None


def _backfill_mark(
    reached: dict[str, datetime], *, since: datetime, now: datetime, overlap: timedelta
) -> datetime | None:
    """The watermark to save, or None when the run has not moved past `since` yet. The next run reads from the
    watermark minus the overlap, so the watermark is `overlap` past the point up to which every kind is read:
    the earliest of the kinds still being read (a kind read up to T has every row before T) and of `now` minus
    the overlap (rows stamped later may still be committing). Once every kind is read, the run's start."""
    if not reached:
        return now
    complete_up_to = min([now - overlap, *reached.values()])
    return complete_up_to + overlap if complete_up_to > since else None


def _backfill_advance(connection: Connection, mark: datetime | None, result: BackfillResult) -> None:
    """Save the watermark when it moves forward (never back: a manual run from an earlier date, or a concurrent
    run further on, must not pull it back)."""
    current = connection.commerce_backfill_watermark
    if mark is None or (current is not None and mark <= current):
        return
    with transaction.atomic():
        stored = (
            Connection.objects.select_for_update()
            .values_list("commerce_backfill_watermark", flat=True)
            .get(pk=connection.pk)
        )
        if stored is None or mark > stored:
            # update(), not save(): the connection's other fields (and updated_at) belong to its editors.
            Connection.objects.filter(pk=connection.pk).update(commerce_backfill_watermark=mark)
            stored = result.watermark = mark
        connection.commerce_backfill_watermark = stored


def _backfill_kept(result: BackfillResult) -> str:
    if result.watermark is None:
        return ""
    return f"; watermark now {result.watermark:%Y-%m-%d %H:%M:%S}"


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _backfill_page(
    *, connection: Connection, kind: str, entities: list[dict[str, Any]], result: BackfillResult, actor: Any
) -> None:
    records = Record.objects.filter(connection=connection, kind=kind)
    ids = {str(e.get("entity_id") or e.get("id") or "") for e in entities}
    known_ids = set(records.filter(commerce_entity_id__in=ids).values_list("commerce_entity_id", flat=True))
    for entity in entities:
        entity_id = str(entity.get("entity_id") or entity.get("id") or "")
        if entity_id and entity_id in known_ids:
            result.known += 1
            continue
        try:
            document = document_from_entity(kind, entity)
            with transaction.atomic():
                document = _keyed(connection, document)
                accepted = record_accept(
                    connection=connection, document=document, source=Record.Source.BACKFILL, actor=actor
                )
                if accepted.created:
                    transaction.on_commit(functools.partial(waker.wake, accepted.record.pk))
        except UnreadablePayload as exc:
            result.unreadable += 1
            audit_record(
                action="commerce.backfill_unreadable",
                actor=actor,
                connection=connection,
                target_type=f"commerce.{kind}",
                target_id=entity_id,
                outcome=AuditEvent.Outcome.FAILURE,
                message=f"{kind} {entity_id or '?'} from the backfill could not be read: {exc}",
                data={"kind": kind, "entity_id": entity_id, "increment_id": str(entity.get("increment_id") or "")},
            )
            continue
        if accepted.created:
            result.created += 1
        else:
            result.known += 1


# --- retention -----------------------------------------------------------------------------------------


def deliveries_purge(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Empty raw bodies older than CONNECTOR_PAYLOAD_RETENTION_DAYS (they hold personal data) and drop
    rejection counters as old. Deliveries, records, plans and the audit trail stay."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CONNECTOR_PAYLOAD_RETENTION_DAYS)
    purged = 0
    while True:
        ids = list(
            Delivery.objects.filter(received_at__lt=cutoff, body_purged_at__isnull=True).values_list("pk", flat=True)[
                :batch
            ]
        )
        if not ids:
            break
        purged += Delivery.objects.filter(pk__in=ids).update(body=b"", body_purged_at=now)
    DeliveryRejection.objects.filter(minute__lt=cutoff).delete()
    if purged:
        audit_record(
            action="commerce.bodies_purged",
            actor="system:purge",
            outcome=AuditEvent.Outcome.SUCCESS,
            message=f"Emptied {purged} webhook bodies received before {cutoff:%Y-%m-%d}",
            data={"purged": purged, "cutoff": cutoff.isoformat()},
        )
    return purged
