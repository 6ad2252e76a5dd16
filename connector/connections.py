"""Connection services: create, change, enable, disable and delete a connection and its webhook keys, from
the admin or from a JSON document (`manage.py apply_connection`). Every change is audited with the names of the
fields that changed; the values of secrets never leave the row."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import models as db_models
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record

from .models import SECRET_FIELDS, Connection, WebhookKey

SECRET_MASK = "***"

# Runtime state and timestamps are not configuration: neither the admin form nor a document sets them.
CONNECTION_RUNTIME_FIELDS = ("id", "commerce_backfill_watermark", "fusion_sync_watermark", "created_at", "updated_at")
WEBHOOK_KEY_FIELDS = (
    "scheme",
    "label",
    "active",
    "secret",
    "public_key",
    "header_name",
    "encoding",
    "prefix",
    "recipient_client_id",
    "provider_id",
)
WEBHOOK_KEY_SECRET_FIELDS = ("secret",)


# Each side's stored secrets go only to that side's hosts. Changing a host (another scheme, host or port in any of
# these URLs) clears the side's stored secrets unless the same change gives them again: whoever may edit a
# connection must not be able to send its stored credentials to a host of their choosing.
SIDE_HOST_FIELDS = {
    "Fusion": ("fusion_base_url", "fusion_token_url"),
    "Commerce": ("commerce_base_url", "commerce_ims_token_url"),
}
SIDE_SECRET_FIELDS = {
    "Fusion": ("fusion_client_secret", "fusion_password"),
    "Commerce": (
        "commerce_consumer_secret",
        "commerce_access_token",
        "commerce_access_token_secret",
        "commerce_client_secret",
    ),
}


def _origin(url: str) -> tuple[str, str, int | None] | str:
    try:
        parts = urlsplit(url or "")
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return url or ""
    return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port


def host_changes(*, before: Connection, after: Connection) -> dict[str, list[str]]:
    """{side: [URL fields whose host changed]} for the sides whose hosts differ between two versions."""
    changed: dict[str, list[str]] = {}
    for side, names in SIDE_HOST_FIELDS.items():
        moved = [name for name in names if _origin(getattr(before, name)) != _origin(getattr(after, name))]
        if moved:
            changed[side] = moved
    return changed


def required_secrets(connection: Connection) -> dict[str, tuple[str, ...]]:
    """The secrets each side's chosen auth needs."""
    fusion: tuple[str, ...] = (
        ("fusion_password",) if connection.fusion_auth == Connection.FusionAuth.BASIC else ("fusion_client_secret",)
    )
    if connection.commerce_deployment == Connection.Deployment.SAAS:
        commerce: tuple[str, ...] = ("commerce_client_secret",)
    else:
        commerce = ("commerce_consumer_secret", "commerce_access_token", "commerce_access_token_secret")
    return {"Fusion": fusion, "Commerce": commerce}


def secrets_kept_across_host_change(
    *, before: Connection, after: Connection, given: Collection[str] | None
) -> dict[str, list[str]]:
    """{side: [stored secrets that would go to a changed host without being given again]}. `given` names the
    secrets the change sets (a new value or an explicit clear); None: those whose value differs from `before`."""
    kept: dict[str, list[str]] = {}
    for side in host_changes(before=before, after=after):
        names = [
            name
            for name in SIDE_SECRET_FIELDS[side]
            if getattr(before, name)
            and getattr(after, name) == getattr(before, name)
            and (given is None or name not in given)
        ]
        if names:
            kept[side] = names
    return kept


def connection_config_fields() -> list[str]:
    """The configurable fields of a connection, in model order."""
    return [f.name for f in Connection._meta.concrete_fields if f.name not in CONNECTION_RUNTIME_FIELDS]


def plain_value(value: Any) -> Any:
    """A JSON-friendly copy of a field value (for the audit trail and documents)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)  # also turns a choices enum member into its plain value


@dataclass(frozen=True)
class FieldChanges:
    """Which fields differ. `fields` names every changed field (secrets included, by name only); `values`
    holds before/after for the fields that are not secrets."""

    fields: tuple[str, ...] = ()
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: frozenset[str] = frozenset()
    initial: bool = False  # a new object: every field holding a value is listed

    def __bool__(self) -> bool:
        return bool(self.fields)

    def lines(self) -> list[str]:
        """Human-readable lines, one per field; secrets show as <changed>."""
        out = []
        for name in self.fields:
            if name in self.secrets:
                out.append(f"{name}: <changed>")
            elif self.initial:
                out.append(f"{name}: {self.values[name]['to']!r}")
            else:
                change = self.values[name]
                out.append(f"{name}: {change['from']!r} -> {change['to']!r}")
        return out

    def audit_data(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "values": self.values}


def field_changes(
    *, before: db_models.Model | None, after: db_models.Model, fields: Iterable[str], secrets: Iterable[str]
) -> FieldChanges:
    """Compare two instances field by field. With no `before`, every field holding a value counts."""
    secret_names = frozenset(secrets)
    changed: list[str] = []
    values: dict[str, dict[str, Any]] = {}
    for name in fields:
        new = getattr(after, name)
        if before is None:
            if new in (None, ""):
                continue
            old = None
        else:
            old = getattr(before, name)
            if old == new:
                continue
        changed.append(name)
        if name not in secret_names:
            values[name] = {"from": plain_value(old), "to": plain_value(new)}
    return FieldChanges(
        fields=tuple(changed), values=values, secrets=secret_names & set(changed), initial=before is None
    )


@dataclass(frozen=True)
class ConnectionSaved:
    connection: Connection
    created: bool
    changes: FieldChanges
    secrets_cleared: tuple[str, ...] = ()  # stored secrets emptied because their side's host changed


def connection_save(
    *, connection: Connection, actor: Any, via: str = "admin", secrets_given: Collection[str] | None = None
) -> ConnectionSaved:
    """Create or update a connection the caller has validated (full_clean), and audit which fields changed.
    Only changed fields are written, so a concurrent watermark update is never overwritten; nothing is
    written (and nothing audited) when nothing changed.

    A change of a side's host (SIDE_HOST_FIELDS) empties that side's stored secrets that the change does not give
    again. `secrets_given` names the secret fields this change sets, even to the stored value (the admin form and
    apply_connection know; `connection.secrets_given` carries it from a form); without it, a secret counts as
    given when its value differs from the stored one."""
    fields = connection_config_fields()
    if secrets_given is None:
        secrets_given = connection.secrets_given
    connection.secrets_given = None
    with transaction.atomic():
        stored = None
        if connection.pk is not None:
            stored = Connection.objects.select_for_update().filter(pk=connection.pk).first()
        cleared: tuple[str, ...] = ()
        if stored is not None:
            kept = secrets_kept_across_host_change(before=stored, after=connection, given=secrets_given)
            cleared = tuple(name for names in kept.values() for name in names)
            for name in cleared:
                setattr(connection, name, "")
        changes = field_changes(before=stored, after=connection, fields=fields, secrets=SECRET_FIELDS)
        if stored is None:
            connection.save(force_insert=connection.pk is None)
            audit_record(
                action="connection.created",
                actor=actor,
                connection=connection,
                target=connection,
                message=f"Connection {connection.slug} created",
                data=changes.audit_data() | {"via": via},
            )
            return ConnectionSaved(connection=connection, created=True, changes=changes)
        if not changes:
            return ConnectionSaved(connection=connection, created=False, changes=changes)
        connection.save(update_fields=[*changes.fields, "updated_at"])
        _audit_connection_changes(connection=connection, changes=changes, actor=actor, via=via, cleared=cleared)
    return ConnectionSaved(connection=connection, created=False, changes=changes, secrets_cleared=cleared)


def _audit_connection_changes(
    *, connection: Connection, changes: FieldChanges, actor: Any, via: str, cleared: tuple[str, ...] = ()
) -> None:
    others = tuple(name for name in changes.fields if name != "enabled")
    if others:
        update = FieldChanges(
            fields=others,
            values={k: v for k, v in changes.values.items() if k != "enabled"},
            secrets=changes.secrets,
        )
        message = f"Connection {connection.slug} changed: {', '.join(others)}"
        data = update.audit_data() | {"via": via}
        if cleared:
            message += f"; stored secrets cleared because the host changed: {', '.join(cleared)}"
            data["cleared_by_host_change"] = list(cleared)  # names only (a key naming "secret" is masked)
        audit_record(
            action="connection.updated",
            actor=actor,
            connection=connection,
            target=connection,
            message=message,
            data=data,
        )
    if "enabled" in changes.fields:
        _audit_enabled(connection=connection, actor=actor, via=via)


def _audit_enabled(*, connection: Connection, actor: Any, via: str) -> None:
    word = "enabled" if connection.enabled else "disabled"
    audit_record(
        action=f"connection.{word}",
        actor=actor,
        connection=connection,
        target=connection,
        message=f"Connection {connection.slug} {word}",
        data={
            "fields": ["enabled"],
            "values": {"enabled": {"from": not connection.enabled, "to": connection.enabled}},
            "via": via,
        },
    )


def connection_set_enabled(*, connection: Connection, enabled: bool, actor: Any, via: str = "admin") -> bool:
    """Enable or disable a connection. Returns False (and audits nothing) when it already was."""
    with transaction.atomic():
        updated = (
            Connection.objects.filter(pk=connection.pk)
            .exclude(enabled=enabled)
            .update(enabled=enabled, updated_at=timezone.now())
        )
        connection.enabled = enabled
        if updated:
            _audit_enabled(connection=connection, actor=actor, via=via)
    return bool(updated)


def connection_delete(*, connection: Connection, actor: Any, via: str = "admin") -> None:
    """Delete a connection (its webhook keys go with it; records protect it). The audit trail keeps it."""
    with transaction.atomic():
        pk, slug = connection.pk, connection.slug
        connection.delete()
        audit_record(
            action="connection.deleted",
            actor=actor,
            connection=pk,
            target_type=Connection._meta.label_lower,
            target_id=pk,
            message=f"Connection {slug} deleted",
            data={"slug": slug, "via": via},
        )


def webhook_key_save(*, key: WebhookKey, actor: Any, via: str = "admin") -> FieldChanges:
    """Create or update a webhook verification key (validated by the caller) and audit which fields changed
    (never the secret's value)."""
    with transaction.atomic():
        stored = WebhookKey.objects.filter(pk=key.pk).first() if key.pk is not None else None
        changes = field_changes(before=stored, after=key, fields=WEBHOOK_KEY_FIELDS, secrets=WEBHOOK_KEY_SECRET_FIELDS)
        if stored is not None and not changes:
            return changes
        key.save()
        audit_record(
            action="webhook_key.created" if stored is None else "webhook_key.updated",
            actor=actor,
            connection=key.connection_id,
            target=key,
            message=f"Webhook key {key.get_scheme_display()} {key.label!r} {'added' if stored is None else 'changed'}",
            data=changes.audit_data() | {"via": via},
        )
    return changes


def webhook_key_delete(*, key: WebhookKey, actor: Any, via: str = "admin") -> None:
    with transaction.atomic():
        pk = key.pk
        audit_record(
            action="webhook_key.deleted",
            actor=actor,
            connection=key.connection_id,
            target_type=WebhookKey._meta.label_lower,
            target_id=pk,
            message=f"Webhook key {key.get_scheme_display()} {key.label!r} removed",
            data={"scheme": key.scheme, "label": key.label, "via": via},
        )
        key.delete()
