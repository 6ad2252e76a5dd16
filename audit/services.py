"""The one writer of the audit trail."""

from __future__ import annotations

from typing import Any

from django.db import models

from connector.redaction import redact

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
    clean = redact(data or {})
    text = str(clean)
    if len(text) > MAX_DATA_CHARS:
        clean = {"truncated": True, "excerpt": text[:MAX_DATA_CHARS]}
    return AuditEvent.objects.create(
        action=action,
        actor=actor_name[:150],
        user=user,
        connection_id=getattr(connection, "pk", connection),
        target_type=target_type,
        target_id=str(target_id or ""),
        outcome=outcome,
        message=redact(message)[:4000],
        data=clean,
        correlation_id=str(correlation_id or "")[:64],
    )
