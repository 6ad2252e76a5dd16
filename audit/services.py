"""The one writer of the audit trail."""

from __future__ import annotations

from typing import Any

from django.db import models

from core.redaction import redact

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


def audit_record_many(events: list[dict[str, Any]]) -> None:
    """Write several events at once (one INSERT per 500): each is the keyword arguments of audit_record, with a
    system actor name and the target given as `target` or as target_type/target_id. The same redaction and cuts as
    audit_record."""
    rows = []
    for event in events:
        values = dict(event)
        target = values.pop("target", None)
        actor_name, user = _actor_of(values.pop("actor", None))
        target_type = values.pop("target_type", "") or (target._meta.label_lower if target is not None else "")
        target_id = values.pop("target_id", "") or (target.pk if target is not None else "")
        rows.append(
            AuditEvent(
                user=user,
                target_id=str(target_id or ""),
                **_event_fields(
                    action=values.pop("action"),
                    actor=actor_name,
                    connection=values.pop("connection", None),
                    target_type=target_type,
                    outcome=values.pop("outcome", AuditEvent.Outcome.SUCCESS),
                    message=values.pop("message", ""),
                    data=values.pop("data", None),
                    correlation_id=values.pop("correlation_id", ""),
                ),
            )
        )
    AuditEvent.objects.bulk_create(rows, batch_size=500)


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
