"""Backfill: pull the Commerce documents changed since the watermark and make records for the ones no webhook
brought, through the same normalisation as the webhooks."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import DataError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from connector.models import Connection, Record
from connector.records import record_accept, record_unreadable
from connector.wakeups import waker

from .client import CommerceClient, updated_at_of
from .deliveries import document_keyed, unreadable_key
from .envelopes import CREDIT_MEMO, INVOICE, ORDER, UnreadablePayload
from .payloads import document_from_entity


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
    newest: datetime | None = None  # the latest updated_at read

    @property
    def found_something(self) -> bool:
        """Whether the run made a record, parked one, moved the watermark or stopped short: a run that read
        nothing new writes nothing (no watermark, no audit event)."""
        return bool(self.created or self.unreadable or self.watermark or not self.complete)

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
# progress(kind, documents on the page just read, the counts so far)
BackfillProgress = Callable[[str, int, BackfillResult], None]


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
    progress: BackfillProgress | None = None,
) -> BackfillResult:
    """Pull the orders, invoices and credit memos Commerce changed since the watermark (minus an overlap, as
    Commerce stamps updated_at at transaction start) and create records for the ones we do not know, through
    the same normalisation as the webhooks. Known documents are left alone.

    The three searches (keyset-paged, oldest first) advance together, one page at a time from whichever is
    furthest behind, and the watermark is saved after every page: up to where all three are read, or the run's
    start once all are read. It only moves forward, and only past something new. A run stops after `max_pages`
    pages or `max_seconds` (CONNECTOR_BACKFILL_MAX_PAGES / _MAX_SECONDS), and a failed run keeps what it read:
    the next run carries on from the watermark. One audit event per run that made or parked a record, moved the
    watermark, stopped short or failed; a run that found nothing new writes nothing (backfill_checked keeps
    when it ended).
    `progress`, when given, hears after every page: its kind, the documents on it and the counts so far."""
    now = now or timezone.now()
    overlap = timedelta(seconds=settings.CONNECTOR_BACKFILL_OVERLAP_SECONDS)
    if since is None:
        mark = connection.commerce_backfill_watermark
        since = (mark - overlap) if mark else (now - timedelta(hours=settings.CONNECTOR_BACKFILL_FIRST_HOURS))
    max_pages = settings.CONNECTOR_BACKFILL_MAX_PAGES if max_pages is None else max_pages
    max_seconds = settings.CONNECTOR_BACKFILL_MAX_SECONDS if max_seconds is None else max_seconds
    client = client or CommerceClient.for_connection(connection)
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
                if progress is not None:
                    progress(kind, len(page), result)
                read_up_to = _backfill_read_up_to(page)
                reached[kind] = max(reached[kind], read_up_to or reached[kind])
                result.newest = max(filter(None, (result.newest, read_up_to)), default=None)
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
    if not result.found_something:
        cache.set(checked_key(connection.pk), {"at": timezone.now(), "message": message}, timeout=None)
        return result
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


def checked_key(connection_id: int) -> str:
    return f"commerce-backfill:checked:{connection_id}"


def backfill_checked(connection_id: int) -> dict[str, Any] | None:
    """When the connection's backfill last ended finding nothing new, and its message; kept in the cache (such a
    run writes no row). None when the cache has forgotten it."""
    return cache.get(checked_key(connection_id))


def _backfill_read_up_to(page: list[dict[str, Any]]) -> datetime | None:
    """The updated_at of the page's last row that has one (the search returns rows oldest first)."""
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
    run further on, must not pull it back), and only past something new: a document made into a record or
    parked, or one stamped after the watermark. A run that read nothing newer leaves it (the next run reads from
    a little earlier, which is always safe) and writes nothing."""
    current = connection.commerce_backfill_watermark
    if mark is None or (current is not None and mark <= current):
        return
    newer = result.newest is not None and (current is None or result.newest > current)
    if current is not None and not (newer or result.created or result.unreadable):
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
    """Each document in its own savepoint: one that cannot be read (or whose values the record's columns cannot
    hold) is parked as an unreadable record, audited, and the page goes on, so the watermark passes it."""
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
                document = document_keyed(connection, document)
                accepted = record_accept(
                    connection=connection, document=document, source=Record.Source.BACKFILL, actor=actor
                )
                if accepted.created:
                    transaction.on_commit(functools.partial(waker.wake, accepted.record.pk))
        except (UnreadablePayload, DataError) as exc:
            result.unreadable += 1
            _backfill_unreadable(connection=connection, kind=kind, entity=entity, reason=str(exc), actor=actor)
            continue
        if accepted.created:
            result.created += 1
        else:
            result.known += 1


def _backfill_unreadable(*, connection: Connection, kind: str, entity: dict[str, Any], reason: str, actor: Any) -> None:
    """Park the document as an unreadable record (the same document on the next run attaches to it) and audit
    the backfill's finding the first time."""
    entity_id = str(entity.get("entity_id") or entity.get("id") or "")
    number = str(entity.get("increment_id") or "")
    reason = reason.splitlines()[0][:2000] if reason else "unreadable"
    with transaction.atomic():
        parked = record_unreadable(
            connection=connection,
            kind=kind,
            key=unreadable_key(kind, entity, orjson.dumps(entity, default=str, option=orjson.OPT_SORT_KEYS)),
            number=number,
            reason=reason,
            source=Record.Source.BACKFILL,
            actor=actor,
            data={"entity_id": entity_id[:200], "increment_id": number[:200]},
        )
        if parked.created:
            audit_record(
                action="commerce.backfill_unreadable",
                actor=actor,
                connection=connection,
                target_type=f"commerce.{kind}",
                target_id=entity_id[:64],
                outcome=AuditEvent.Outcome.FAILURE,
                message=f"{kind} {entity_id[:64] or '?'} from the backfill could not be read: {reason}",
                data={
                    "kind": kind,
                    "entity_id": entity_id[:200],
                    "increment_id": number[:200],
                    "record": parked.record.pk,
                },
            )
