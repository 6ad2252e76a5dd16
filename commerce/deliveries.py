"""Deliveries: store one verified webhook delivery (and, for a new document, its record) so the request can be
answered; count refused requests; purge raw bodies after the retention period."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Mapping
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
from connector.records import record_accept, record_fields, record_insert_statement, record_received_event
from connector.wakeups import waker

from .models import Delivery, DeliveryRejection
from .payloads import ORDER, UnreadablePayload, document_from_entity, envelope_parse
from .verifiers import Verification

logger = logging.getLogger(__name__)


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
            document = document_keyed(connection, document)
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
