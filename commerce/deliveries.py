"""Deliveries: the request stores a verified webhook delivery as it came (`delivery_store`, its one write); a
worker reads it into a record (`delivery_record`): parse, normalise, decide duplicates by the document, audit.
A signed document the worker cannot read becomes a record parked for review as unreadable; nothing it reads
can make it raise. Raw bodies are purged after the retention period."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from connector.documents import SalesDocument
from connector.models import PLACEHOLDER_PREFIX, Connection, Record
from connector.records import (
    Accepted,
    connection_supports_skip_locked,
    record_accept,
    record_accept_many,
    record_unreadable,
)
from connector.wakeups import delivery_waker

from .envelopes import ORDER, UnreadablePayload, envelope_parse
from .models import Delivery, DeliveryRejection
from .payloads import document_from_entity
from .sql import deliveries_read, delivery_insert

logger = logging.getLogger(__name__)


# --- the request: store ----------------------------------------------------------------------------------


def delivery_store(
    *,
    connection_id: int,
    body: bytes,
    verifier: str,
    headers: Mapping[str, str],
    request_id: str = "",
    source_ip: str | None = None,
    event_hint: str = "",
) -> int:
    """Store one verified delivery, unread, in one INSERT, and wake a worker once it is committed; its id. The
    body is not parsed here: whatever it holds, storing it cannot fail on it."""
    database = connections[DEFAULT_DB_ALIAS]  # once: every use of the `connection` proxy is a thread-local lookup

    def write() -> int:
        return delivery_insert(
            database,
            received_at=timezone.now(),
            connection_id=connection_id,
            verifier=verifier[:150],
            event_name=event_hint[:150],
            request_id=request_id[:128],
            source_ip=source_ip,
            headers=headers,
            body=body,
        )

    delivery_id = _on_a_live_connection(database, write)
    if database.in_atomic_block:
        database.on_commit(lambda: delivery_waker.wake(delivery_id))
    else:  # autocommit: the statement is committed
        delivery_waker.wake(delivery_id)
    return delivery_id


def _on_a_live_connection(conn: Any, write: Callable[[], Any]) -> Any:
    """Run one autocommit write without Django's per-request health check (CONN_HEALTH_CHECKS: a `SELECT 1`
    round trip before the first query of every request, on top of the webhook's one statement), and retry it
    once on a fresh connection when the kept one turns out dead (a restarted server, an idle timeout): a
    delivery is no more lost to a stale connection than with the check. A retried INSERT whose first run did
    commit stores the delivery twice; the worker reads the second as a duplicate. Inside a transaction the write
    is simply run."""
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


# --- the worker: read ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    delivery_id: int
    record_id: int | None = None
    created: bool = False  # a new record a worker must post
    note: str = ""


def delivery_record(delivery_id: int) -> DeliveryOutcome | None:
    """Read one stored delivery into a record (see deliveries_record): None when it is read already."""
    outcomes = deliveries_record([delivery_id])
    return outcomes[0] if outcomes else None


def deliveries_record(delivery_ids: list[int]) -> list[DeliveryOutcome]:
    """Read these stored deliveries into records, each once, in one transaction (one lock, one commit for a
    batch of wake-ups): the outcomes of those read here; one read already, or being read by another worker, is
    skipped. The caller wakes the new records. Raises only for the database: then nothing of the batch is
    kept, the deliveries stay unread, and the relay drives them again."""
    query = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.RECEIVED).order_by("pk")
    return _read_locked(query)


def deliveries_unread_record(*, limit: int) -> list[DeliveryOutcome]:
    """Read up to `limit` of the oldest unread deliveries, whoever was woken for them: a worker that is awake
    reads what has arrived since its wake-up was sent, so the number of wake-up messages does not limit how fast
    deliveries are read (the later messages then find nothing left to do)."""
    query = Delivery.objects.filter(status=Delivery.Status.RECEIVED).order_by("received_at")[:limit]
    return _read_locked(query)


def _read_locked(query: Any) -> list[DeliveryOutcome]:
    """Lock the deliveries `query` names (skipping those another worker holds) and read them: the common case, a
    new or known document with its entity id, all at once (one look-up, one INSERT of the records, one of
    their audit events); anything else (an event we do not handle, an unreadable body, an order known by its
    number, a batch a concurrent worker overlapped) one by one."""
    with transaction.atomic():
        if connection_supports_skip_locked():
            query = query.select_for_update(skip_locked=True, of=("self",))
        deliveries = list(query)
        for delivery in deliveries:
            delivery.connection = _connection(delivery.connection_id)
        plain, others = _plain_documents(deliveries)
        outcomes: list[DeliveryOutcome] = []
        if plain:
            try:
                with transaction.atomic():
                    outcomes = _accept_plain(plain)
            except (IntegrityError, DataError):
                others = [delivery for delivery, *_ in plain] + others
        for delivery in others:
            outcome = _read(delivery)
            Delivery.objects.filter(pk=delivery.pk).update(**outcome.pop("delivery"))
            outcomes.append(DeliveryOutcome(delivery_id=delivery.pk, **outcome))
    return sorted(outcomes, key=lambda o: o.delivery_id)


_Plain = tuple[Delivery, SalesDocument, dict[str, Any]]


def _plain_documents(deliveries: list[Delivery]) -> tuple[list[_Plain], list[Delivery]]:
    """Split off the deliveries whose document reads cleanly, has its entity id and no placeholder record to
    take over: (delivery, document, the delivery's new row values), and the rest."""
    plain: list[_Plain] = []
    others: list[Delivery] = []
    for delivery in deliveries:
        body = bytes(delivery.body)
        try:
            envelope = envelope_parse(_parse_json(body), hint=delivery.event_name)
            document = document_from_entity(envelope.kind, envelope.entity or {}) if envelope.kind else None
        except Exception:  # read again, one by one, where the reason is kept
            document = None
        if document is None or not document.entity_id:
            others.append(delivery)
            continue
        row = {
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "event_name": envelope.event_name[:150],
            "request_id": (delivery.request_id or envelope.event_id)[:128],
        }
        plain.append((delivery, document, row))
    placeholders = {
        (delivery.connection_id, f"{PLACEHOLDER_PREFIX}{document.increment_id}"[:64])
        for delivery, document, _ in plain
        if document.kind == ORDER and document.increment_id
    }
    taken = set()
    if placeholders:
        taken = set(
            Record.objects.filter(
                kind=ORDER,
                connection_id__in={c for c, _ in placeholders},
                commerce_entity_id__in={key for _, key in placeholders},
            ).values_list("connection_id", "commerce_entity_id")
        )
    if taken:

        def takes_over(item: _Plain) -> bool:
            delivery, document, _ = item
            placeholder = f"{PLACEHOLDER_PREFIX}{document.increment_id}"[:64]
            return document.kind == ORDER and (delivery.connection_id, placeholder) in taken

        others += [item[0] for item in plain if takes_over(item)]
        plain = [item for item in plain if not takes_over(item)]
    return plain, others


def _accept_plain(plain: list[_Plain]) -> list[DeliveryOutcome]:
    outcomes = []
    by_connection: dict[int, list[_Plain]] = {}
    for item in plain:
        by_connection.setdefault(item[0].connection_id, []).append(item)
    for items in by_connection.values():
        connection = items[0][0].connection
        # One actor per scheme: the batch's audit events name the scheme that verified each delivery.
        for scheme in {delivery.verifier.split(":", 1)[0] for delivery, _, _ in items}:
            group = [item for item in items if item[0].verifier.split(":", 1)[0] == scheme]
            accepted = record_accept_many(
                connection=connection,
                documents=[(document, row["request_id"]) for _, document, row in group],
                actor=f"system:webhook:{scheme}" if scheme else "system:webhook",
            )
            read, emptied = [], []
            for (delivery, _, row), result in zip(group, accepted, strict=True):
                status = Delivery.Status.ACCEPTED if result.created else Delivery.Status.DUPLICATE
                outcome = _outcome(dict(row), status, result)
                values = outcome.pop("delivery")
                read.append(
                    (
                        delivery.pk,
                        status,
                        values["event_name"],
                        values["request_id"],
                        values["note"],
                        values["record_id"],
                        values["body_sha256"],
                    )
                )
                if "body" in values:
                    emptied.append(delivery.pk)
                outcomes.append(DeliveryOutcome(delivery_id=delivery.pk, **outcome))
            deliveries_read(connections[DEFAULT_DB_ALIAS], read)
            if emptied:  # a duplicate keeps the hash of its body, not the body
                Delivery.objects.filter(pk__in=emptied).update(body=b"")
    return outcomes


_connections: dict[int, Connection] = {}


def _connection(connection_id: int) -> Connection:
    """The delivery's connection, for its id only (records and audit events name it): loaded once per process,
    without its credentials."""
    connection = _connections.get(connection_id)
    if connection is None:
        if len(_connections) > 1000:
            _connections.clear()
        connection = _connections[connection_id] = Connection.objects.only("id", "slug").get(pk=connection_id)
    return connection


def _read(delivery: Delivery) -> dict[str, Any]:
    body = bytes(delivery.body)
    scheme = delivery.verifier.split(":", 1)[0]
    actor = f"system:webhook:{scheme}" if scheme else "system:webhook"
    row: dict[str, Any] = {
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "event_name": delivery.event_name,
        "request_id": delivery.request_id,
    }
    kind, entity, request_id = None, None, delivery.request_id
    try:
        envelope = envelope_parse(_parse_json(body), hint=delivery.event_name)
        row["event_name"] = envelope.event_name[:150]
        request_id = (request_id or envelope.event_id)[:128]
        row["request_id"] = request_id
        kind, entity = envelope.kind, envelope.entity
        if kind is None:
            note = f"event type {envelope.event_name[:150]!r} is not handled"
            _audit_delivery(delivery, "delivery.ignored", AuditEvent.Outcome.INFO, note, actor, request_id)
            return _outcome(row, Delivery.Status.IGNORED, note=note)
        document = document_from_entity(kind, entity or {})
        with transaction.atomic():  # a value the columns cannot hold rolls back this savepoint only
            accepted = record_accept(
                connection=delivery.connection,
                document=document_keyed(delivery.connection, document),
                actor=actor,
                correlation_id=request_id,
            )
    except DatabaseError as exc:
        if not isinstance(exc, DataError):
            raise  # the database, not the document: the delivery stays unread and is driven again
        unreadable: Exception = exc
    except Exception as exc:  # a signed document we cannot read is parked, whatever went wrong reading it
        unreadable = exc
    else:
        status = Delivery.Status.ACCEPTED if accepted.created else Delivery.Status.DUPLICATE
        return _outcome(row, status, accepted)
    reason = _unreadable_reason(unreadable, delivery)
    accepted = record_unreadable(
        connection=delivery.connection,
        kind=kind,
        key=unreadable_key(kind, entity, body),
        number=_text(entity.get("increment_id")) if isinstance(entity, dict) else "",
        reason=reason,
        source=Record.Source.WEBHOOK,
        actor=actor,
        correlation_id=request_id,
        data={"delivery_id": delivery.pk, "event": row["event_name"]},
    )
    status = Delivery.Status.UNREADABLE if accepted.created else Delivery.Status.DUPLICATE
    return _outcome(row, status, accepted, note=reason)


def _outcome(row: dict[str, Any], status: str, accepted: Accepted | None = None, note: str = "") -> dict[str, Any]:
    row.update(status=status, note=note[:2000], record_id=accepted.record.pk if accepted else None)
    if status == Delivery.Status.DUPLICATE:
        row["body"] = b""  # its headers and the hash of its body are kept; the body is the first delivery's
    return {
        "delivery": row,
        "status": status,
        "record_id": row["record_id"],
        "created": bool(accepted and accepted.created and status == Delivery.Status.ACCEPTED),
        "note": note,
    }


def _unreadable_reason(exc: Exception, delivery: Delivery) -> str:
    if isinstance(exc, UnreadablePayload):
        return str(exc)
    if isinstance(exc, DataError):
        return f"a value does not fit the record ({str(exc).splitlines()[0][:200]})"
    if isinstance(exc, ValueError | UnicodeDecodeError | RecursionError):
        return "the body is not JSON that can be read"
    logger.warning(
        "Delivery %s could not be read; parked for review", delivery.pk, exc_info=True, extra={"delivery": delivery.pk}
    )
    return f"the document could not be read ({type(exc).__name__})"


def _parse_json(body: bytes) -> Any:
    """orjson parses a delivery several times faster than json; what it refuses but the standard library reads
    (a UTF-8 byte order mark, UTF-16) still gets the standard library's reading. Deep nesting raises
    (orjson's JSONDecodeError, or the standard library's RecursionError): the caller parks it."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _text(value: Any) -> str:
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def unreadable_key(kind: str | None, entity: Any, body: bytes) -> str:
    """The key of an unreadable document's record (after UNREADABLE_PREFIX): the same document, by webhook or
    by backfill, again and again, is one record; a body with no document we can name is keyed by its bytes."""
    if kind and isinstance(entity, dict):
        identity = _text(entity.get("entity_id") or entity.get("id")) or (
            f"{PLACEHOLDER_PREFIX}{_text(entity.get('increment_id'))}" if _text(entity.get("increment_id")) else ""
        )
        if identity:
            return hashlib.sha256(f"{kind}:{identity}".encode()).hexdigest()[:40]
    return hashlib.sha256(body).hexdigest()[:40]


def _audit_delivery(delivery: Delivery, action: str, outcome: str, message: str, actor: str, request_id: str) -> None:
    audit_record(
        action=action,
        actor=actor,
        connection=delivery.connection_id,
        target=delivery,
        outcome=outcome,
        message=message,
        data={"event": delivery.event_name, "request_id": request_id},
        correlation_id=request_id,
    )


def document_keyed(connection: Connection, document: SalesDocument) -> SalesDocument:
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


def deliveries_unread(*, older_than: timedelta, limit: int) -> list[int]:
    """Deliveries stored more than `older_than` ago that no worker has read (a lost wake-up, a worker that
    died mid-read, a broker that was down), oldest first."""
    cutoff = timezone.now() - older_than
    return list(
        Delivery.objects.filter(status=Delivery.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_purge(*, now: datetime | None = None, batch: int = 5000) -> int:
    """Empty raw bodies older than CONNECTOR_PAYLOAD_RETENTION_DAYS (they hold personal data) and drop
    rejection counters as old. Deliveries, records, plans and the audit trail stay. Unread deliveries keep
    their bodies: nothing has been made of them yet."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CONNECTOR_PAYLOAD_RETENTION_DAYS)
    purged = 0
    old = Delivery.objects.filter(received_at__lt=cutoff, body_purged_at__isnull=True).exclude(
        status=Delivery.Status.RECEIVED
    )
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch])
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
