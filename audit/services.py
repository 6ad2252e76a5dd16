"""The one writer of the audit trail."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection as db_connection
from django.db import models

from core.redaction import redact
from core.rows import insert_row

from .models import AuditEvent

MAX_DATA_CHARS = 20_000


def _actor_of(actor: Any) -> tuple[str, Any]:
    if actor is None:
        return "system", None
    if isinstance(actor, str):
        return actor, None
    username = getattr(actor, "get_username", None)
    if callable(username):
        return str(username()) or f"user:{actor.pk}", actor
    return str(actor), None


def audit_record(
    *,
    action: str,
    actor: Any = None,
    connection: Any = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    message: str = "",
    data: dict[str, Any] | None = None,
    correlation_id: str = "",
) -> AuditEvent:
    """Write one audit event. `actor` is a user, or a string such as "system:relay". `data` is redacted here,
    so callers cannot forget to."""
    actor_name, user = _actor_of(actor)
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
    event = AuditEvent(
        user=user,
        target_id=str(target_id or ""),
        **_event_fields(
            action=action,
            actor=actor_name,
            connection=connection,
            target_type=target_type,
            outcome=outcome,
            message=message,
            data=data,
            correlation_id=correlation_id,
        ),
    )
    event.save(force_insert=True)
    return event


def audit_record_many(events: list[dict[str, Any]]) -> int:
    """Several events at once (one INSERT): each a dict of audit_record's keyword arguments, with a string actor
    and a target_type/target_id (no model instance). The same redaction and cuts as audit_record."""
    rows = []
    for event in events:
        actor_name, _ = _actor_of(event.get("actor"))
        fields = _event_fields(
            action=event["action"],
            actor=actor_name,
            connection=event.get("connection"),
            target_type=event.get("target_type", ""),
            outcome=event.get("outcome", AuditEvent.Outcome.SUCCESS),
            message=event.get("message", ""),
            data=event.get("data"),
            correlation_id=event.get("correlation_id", ""),
        )
        rows.append(AuditEvent(target_id=str(event.get("target_id") or ""), **fields))
    AuditEvent.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _event_fields(
    *,
    action: str,
    actor: str,
    connection: Any,
    target_type: str,
    outcome: str,
    message: str,
    data: dict[str, Any] | None,
    correlation_id: str,
) -> dict[str, Any]:
    """An event's field values (by attname) but its user and target id, redacted and cut to size."""
    clean = redact(data or {})
    text = str(clean)
    if len(text) > MAX_DATA_CHARS:
        clean = {"truncated": True, "excerpt": text[:MAX_DATA_CHARS]}
    return {
        "action": action,
        "actor": actor[:150],
        "connection_id": getattr(connection, "pk", connection),
        "target_type": target_type,
        "outcome": outcome,
        "message": redact(message)[:4000],
        "data": clean,
        "correlation_id": str(correlation_id or "")[:64],
    }


def audit_insert_from(
    *,
    source: str,
    target_id_column: str,
    action: str,
    actor: str = "system",
    connection: Any = None,
    target_type: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    message: str = "",
    data: dict[str, Any] | None = None,
    correlation_id: str = "",
) -> tuple[str, list[Any]]:
    """The same event as audit_record, as an `INSERT ... SELECT ... FROM <source>` to compose into one
    statement with the write it records (the webhook hot path): one row per row of `source`, whose
    `target_id_column` is the target's id. Same redaction, same columns; the actor is a system name."""
    fields = _event_fields(
        action=action,
        actor=actor,
        connection=connection,
        target_type=target_type,
        outcome=outcome,
        message=message,
        data=data,
        correlation_id=correlation_id,
    )
    columns, expressions, values = insert_row(AuditEvent, fields, exclude=("target_id",))
    return _insert_from_sql(columns, expressions, source, target_id_column), values


@functools.cache
def _insert_from_sql(columns: str, expressions: str, source: str, target_id_column: str) -> str:
    quote = db_connection.ops.quote_name
    return (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}, {quote('target_id')}) "  # noqa: S608
        f"SELECT {expressions}, CAST({source}.{target_id_column} AS TEXT) FROM {source}"
    )
