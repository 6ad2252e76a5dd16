"""Record lifecycle services: accept, claim under a lease, retry with backoff, park for review, replay.
Each state change writes its audit event in the same transaction."""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record

from .documents import SalesDocument
from .exceptions import OutcomeUnknownError
from .models import Connection, Record
from .rows import JsonText, insert_row

logger = logging.getLogger(__name__)


def lease_token() -> str:
    """Who holds a lease: host, process and a per-claim nonce (forked workers share their parent's pid
    at import time, and one process may claim the same record again after its lease ran out)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def backoff_delay(*, attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt-1)))."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(0, ceiling)


@dataclass(frozen=True)
class Accepted:
    record: Record
    created: bool


def record_accept(
    *,
    connection: Connection,
    document: SalesDocument,
    source: str = Record.Source.WEBHOOK,
    actor: Any = "system:webhook",
    correlation_id: str = "",
) -> Accepted:
    """Create the record for (connection, kind, entity) or attach to the existing one. Must be called inside
    the caller's transaction; the caller wakes a worker on commit when `created`."""
    fields = record_fields(connection=connection, document=document, source=source)
    now = timezone.now()
    sql, params = record_insert_statement(fields, now=now)
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    created = row is not None
    if row is not None:
        record = Record(pk=row[0], created_at=now, updated_at=now, **fields)
        record.connection = connection  # cached: callers read it
    else:
        record = Record.objects.get(connection=connection, kind=document.kind, commerce_entity_id=document.entity_id)
    event = record_received_event(document=document, source=source, created=created)
    audit_record(actor=actor, connection=connection, target=record, correlation_id=correlation_id, **event)
    return Accepted(record=record, created=created)


def record_insert_statement(
    fields: dict[str, Any], *, unless_placeholder: str = "", returning: bool = True, now: datetime | None = None
) -> tuple[str, list[Any]]:
    """`INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id` for a new record with these `record_fields`:
    one statement, no savepoint, on the hot path of every webhook (PostgreSQL and SQLite 3.35+ both speak it).
    It inserts nothing when the document is already known (a concurrent insert of the same document waits for
    the other transaction, then finds it), nor when `unless_placeholder` names an order placeholder record
    that exists (that record must take the document's entity id instead; the caller's slow path does that)."""
    columns, expressions, values = insert_row(Record, fields, now=now)
    if unless_placeholder:
        values += [fields["connection_id"], fields["kind"], unless_placeholder]
    return _record_insert_sql(columns, expressions, bool(unless_placeholder), returning), values


@functools.cache
def _record_insert_sql(columns: str, expressions: str, guarded: bool, returning: bool) -> str:
    table = db_connection.ops.quote_name(Record._meta.db_table)
    guard = "1 = 1"
    if guarded:
        guard = (
            f"NOT EXISTS (SELECT 1 FROM {table} WHERE connection_id = %s AND kind = %s "  # noqa: S608
            "AND commerce_entity_id = %s)"
        )
    return (
        f"INSERT INTO {table} ({columns}) SELECT {expressions} WHERE {guard} "  # noqa: S608
        "ON CONFLICT (connection_id, kind, commerce_entity_id) DO NOTHING" + (" RETURNING id" if returning else "")
    )


def record_fields(
    *, connection: Connection, document: SalesDocument, source: str, serialised: bool = False
) -> dict[str, Any]:
    """A new record's field values (by attname) for a document: for Record(**fields) or record_insert_statement
    (`serialised`: the document as JSON text, which only record_insert_statement takes)."""
    return {
        "connection_id": connection.pk,
        "kind": document.kind,
        "commerce_entity_id": document.entity_id,
        "commerce_number": document.increment_id,
        "commerce_order_id": document.order_entity_id,
        "source": source,
        "document": JsonText(document.to_json_text()) if serialised else document.to_json(),
        "document_date": document.created_at,
        "grand_total": document.grand_total,
        "currency": document.currency,
    }


def record_received_event(*, document: SalesDocument, source: str, created: bool = True) -> dict[str, Any]:
    """The audit event of a record's arrival (or of a duplicate), for audit_record or audit_insert_from."""
    return {
        "action": "record.received" if created else "record.duplicate",
        "target_type": Record._meta.label_lower,
        "outcome": AuditEvent.Outcome.SUCCESS if created else AuditEvent.Outcome.INFO,
        "message": (
            f"{document.kind} {document.increment_id} received via {source}"
            if created
            else f"{document.kind} {document.increment_id} already known; nothing new created"
        ),
        "data": {"source": source, "grand_total": str(document.grand_total), "currency": document.currency},
    }


def record_claim(*, record_id: int, worker: str = "", now: datetime | None = None) -> Record | None:
    """Take the record's lease if it is due and nobody holds it. Returns None when there is nothing to do
    (already done, not due, or another worker holds it). One worker at a time per record."""
    now = now or timezone.now()
    worker = worker or lease_token()
    lease = timedelta(seconds=settings.CONNECTOR_LEASE_SECONDS)
    with transaction.atomic():
        qs = Record.objects.filter(pk=record_id, state__in=Record.ACTIVE_STATES, next_attempt_at__lte=now)
        qs = qs.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        if connection_supports_skip_locked():
            # Lock the record row only: locking the joined connection row too would make concurrent claims
            # of other records of the same connection skip.
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        record = qs.select_related("connection").first()
        if record is None:
            return None
        updated = (
            Record.objects.filter(pk=record.pk)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + lease, leased_by=worker[:100])
        )
        if not updated:
            return None
    record.lease_until = now + lease
    record.leased_by = worker[:100]
    return record


def connection_supports_skip_locked() -> bool:
    from django.db import connection

    return connection.features.has_select_for_update_skip_locked


def record_renew_lease(*, record: Record, now: datetime | None = None) -> bool:
    """Extend the lease this worker holds, right before a write to Fusion: the write then happens with a full
    lease ahead, so no other worker can take the record mid-call. False when the lease was lost."""
    now = now or timezone.now()
    until = now + timedelta(seconds=settings.CONNECTOR_LEASE_SECONDS)
    renewed = Record.objects.filter(pk=record.pk, leased_by=record.leased_by, lease_until__gt=now).update(
        lease_until=until
    )
    if renewed:
        record.lease_until = until
    return bool(renewed)


def record_release(*, record: Record) -> None:
    Record.objects.filter(pk=record.pk, leased_by=record.leased_by).update(lease_until=None, leased_by="")
    record.lease_until, record.leased_by = None, ""


def record_retry_later(
    *, record: Record, error: Exception, actor: str = "system:worker", now: datetime | None = None
) -> Record:
    """A transient failure: count the attempt and schedule the next one, or park when attempts run out."""
    now = now or timezone.now()
    conn = record.connection
    attempts = record.attempts + 1
    if attempts >= conn.retry_max_attempts:
        return record_park(
            record=record,
            reason=f"Gave up after {attempts} attempts. Last error: {error}",
            hint="Resolution: check that Fusion is reachable and healthy, then replay the record.",
            actor=actor,
            attempts=attempts,
            error=error,
        )
    delay = backoff_delay(attempt=attempts, base=conn.retry_base_seconds, cap=conn.retry_cap_seconds)
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        delay = max(delay, float(retry_after))
    if isinstance(error, OutcomeUnknownError) or record.outcome_unknown:
        # Give the system time to finish (or give up on) a write it may still be doing before the next
        # attempt looks the document up: a look-up a second later could miss a create still in flight.
        delay = max(delay, float(settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS))
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.RETRYING if record.state == Record.State.RECEIVED else record.state,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=str(error)[:4000],
            lease_until=None,
            leased_by="",
        )
        audit_record(
            action="record.retry_scheduled",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.RETRY,
            message=f"Attempt {attempts} failed; next attempt in {delay:.0f} s",
            data=_error_data(error) | {"attempt": attempts, "delay_seconds": round(delay, 1)},
        )
    record.refresh_from_db()
    return record


def record_transition(
    *,
    record: Record,
    state: str,
    action: str,
    actor: Any,
    message: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Move a record to `state` (and set `fields`) with its audit event, in one transaction."""
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(state=state, **fields)
        audit_record(
            action=action,
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=outcome,
            message=message,
            data=data,
        )


def record_park(
    *,
    record: Record,
    reason: str,
    hint: str,
    actor: str = "system:worker",
    attempts: int | None = None,
    error: Exception | None = None,
) -> Record:
    """Park the record as NEEDS REVIEW with the reason and what to do about it."""
    if not hint.startswith("Resolution:"):
        hint = f"Resolution: {hint}"
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.NEEDS_REVIEW,
            last_error=reason[:4000],
            resolution_hint=hint[:2000],
            lease_until=None,
            leased_by="",
            attempts=attempts if attempts is not None else record.attempts,
        )
        audit_record(
            action="record.needs_review",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.FAILURE,
            message=reason,
            data=(_error_data(error) if error else {}) | {"hint": hint},
        )
    record.refresh_from_db()
    return record


def record_replay(*, record: Record, actor: Any, reason: str = "") -> Record:
    """Put a parked (or ignored) record back in line; the step that failed runs again with current mappings."""
    with transaction.atomic():
        locked = Record.objects.select_for_update().get(pk=record.pk)
        if locked.state not in (Record.State.NEEDS_REVIEW, Record.State.IGNORED, Record.State.RETRYING):
            raise ValueError(
                f"Only records needing review, ignored or waiting to retry can be replayed "
                f"(this one is {locked.get_state_display().lower()})."
            )
        _refuse_while_leased(locked, "replayed")
        resume = Record.State.INVOICE_POSTED if locked.fusion_transaction_id else Record.State.RECEIVED
        Record.objects.filter(pk=locked.pk).update(
            state=resume,
            attempts=0,
            next_attempt_at=timezone.now(),
            lease_until=None,
            leased_by="",
            resolution_hint="",
        )
        audit_record(
            action="record.replayed",
            actor=actor,
            connection=locked.connection_id,
            target=locked,
            message=reason or "Replay requested",
            data={"from_state": locked.state, "reason": reason},
        )
        transaction.on_commit(lambda: record_wake(record_id=locked.pk))
    record.refresh_from_db()
    return record


def record_ignore(*, record: Record, actor: Any, reason: str) -> Record:
    if not reason.strip():
        raise ValueError("Say why the record is ignored.")
    with transaction.atomic():
        locked = Record.objects.select_for_update().get(pk=record.pk)
        if locked.state not in (Record.State.RECEIVED, Record.State.RETRYING, Record.State.NEEDS_REVIEW):
            raise ValueError(
                f"Only records not yet in Fusion can be ignored (this one is {locked.get_state_display().lower()})."
            )
        _refuse_while_leased(locked, "ignored")
        Record.objects.filter(pk=record.pk).update(state=Record.State.IGNORED)
        audit_record(
            action="record.ignored",
            actor=actor,
            connection=record.connection_id,
            target=record,
            outcome=AuditEvent.Outcome.INFO,
            message=reason,
            data={"from_state": record.state},
        )
    record.refresh_from_db()
    return record


def _refuse_while_leased(record: Record, what: str) -> None:
    # A worker holding the record may be creating its document in Fusion right now: taking the record from it
    # could make a second worker post the same document before the first one's create is visible.
    if record.lease_until is not None and record.lease_until > timezone.now():
        raise ValueError(f"A worker is posting this record right now; it can be {what} once it has finished.")


def record_wake(*, record_id: int) -> None:
    """Send a wake-up to a worker. Losing it is harmless: the relay finds due records in Postgres."""
    records_wake(record_ids=[record_id])


def records_wake(*, record_ids: list[int]) -> None:
    """Wake workers for these records: one message per record, or, for many, one message that a worker fans
    out (publishing costs the sender CPU; the web process should pay for one message, not hundreds)."""
    from .tasks import process_record, wake_records

    if not record_ids:
        return
    try:
        if len(record_ids) == 1:
            process_record.apply_async(args=[record_ids[0]], retry=False)
        else:
            wake_records.apply_async(args=[list(record_ids)], retry=False)
    except Exception:  # broker down: the relay will pick the records up
        logger.warning(
            "Broker unavailable; %s record(s) wait for the relay", len(record_ids), extra={"record_ids": record_ids}
        )


def _error_data(error: Exception | None) -> dict:
    if error is None:
        return {}
    as_dict = getattr(error, "as_dict", None)
    return as_dict() if callable(as_dict) else {"error": type(error).__name__, "message": str(error)}


# --- Connections ------------------------------------------------------------------------------------------
# Creating, changing, enabling and disabling a connection, from the admin or from a JSON document
# (`manage.py apply_connection`). Every change is audited with the names of the fields that changed; the
# values of secrets never leave the row. The admin groups and the key rotation live here too.

import json  # noqa: E402
from collections.abc import Iterable, Mapping  # noqa: E402
from dataclasses import field  # noqa: E402
from pathlib import Path  # noqa: E402

from django.apps import apps as global_apps  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402
from django.db import models as db_models  # noqa: E402

from .models import SECRET_FIELDS, WebhookKey  # noqa: E402

SECRET_MASK = "***"

# Runtime state and timestamps are not configuration: neither the admin form nor a document sets them.
CONNECTION_RUNTIME_FIELDS = ("id", "commerce_backfill_watermark", "fusion_sync_watermark", "created_at", "updated_at")
WEBHOOK_KEY_FIELDS = ("scheme", "label", "active", "secret", "public_key", "header_name", "encoding", "prefix")
WEBHOOK_KEY_SECRET_FIELDS = ("secret",)


def connection_config_fields() -> list[str]:
    """The configurable fields of a connection, in model order."""
    return [f.name for f in Connection._meta.concrete_fields if f.name not in CONNECTION_RUNTIME_FIELDS]


def _plain(value: Any) -> Any:
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
            values[name] = {"from": _plain(old), "to": _plain(new)}
    return FieldChanges(
        fields=tuple(changed), values=values, secrets=secret_names & set(changed), initial=before is None
    )


@dataclass(frozen=True)
class ConnectionSaved:
    connection: Connection
    created: bool
    changes: FieldChanges


def connection_save(*, connection: Connection, actor: Any, via: str = "admin") -> ConnectionSaved:
    """Create or update a connection the caller has validated (full_clean), and audit which fields changed.
    Only changed fields are written, so a concurrent watermark update is never overwritten; nothing is
    written (and nothing audited) when nothing changed."""
    fields = connection_config_fields()
    with transaction.atomic():
        stored = None
        if connection.pk is not None:
            stored = Connection.objects.select_for_update().filter(pk=connection.pk).first()
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
        _audit_connection_changes(connection=connection, changes=changes, actor=actor, via=via)
    return ConnectionSaved(connection=connection, created=False, changes=changes)


def _audit_connection_changes(*, connection: Connection, changes: FieldChanges, actor: Any, via: str) -> None:
    others = tuple(name for name in changes.fields if name != "enabled")
    if others:
        update = FieldChanges(
            fields=others,
            values={k: v for k, v in changes.values.items() if k != "enabled"},
            secrets=changes.secrets,
        )
        audit_record(
            action="connection.updated",
            actor=actor,
            connection=connection,
            target=connection,
            message=f"Connection {connection.slug} changed: {', '.join(others)}",
            data=update.audit_data() | {"via": via},
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


# --- Connection documents (apply_connection / export_connection) -------------------------------------------


class ConnectionDocumentError(Exception):
    """The document was refused; `errors` names every problem as "<field>: <what is wrong>"."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class ConnectionApplied:
    connection: Connection
    created: bool
    changes: list[str]


class _Keep:
    """A secret given as "***": keep what is stored."""


_KEEP = _Keep()


def _resolve_value(value: Any, where: str, env: Mapping[str, str], errors: list[str]) -> Any:
    """A value given inline, as {"env": "VAR"} or as {"file": "/path"}."""
    if not isinstance(value, dict):
        return value
    if set(value) == {"env"} and isinstance(value["env"], str) and value["env"]:
        if value["env"] not in env:
            errors.append(f"{where}: the environment variable {value['env']} is not set.")
            return None
        return env[value["env"]]
    if set(value) == {"file"} and isinstance(value["file"], str) and value["file"]:
        try:
            return Path(value["file"]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            errors.append(f"{where}: cannot read the file {value['file']} ({reason}).")
            return None
    errors.append(f'{where}: give a string, {{"env": "VAR"}} or {{"file": "/path"}}.')
    return None


def _resolve_secret(value: Any, where: str, stored: str, env: Mapping[str, str], errors: list[str]) -> Any:
    if value == SECRET_MASK:
        if not stored:
            errors.append(f'{where}: "***" keeps the stored secret, but none is stored; give the secret.')
        return _KEEP
    resolved = _resolve_value(value, where, env, errors)
    if resolved is not None and not isinstance(resolved, str):
        errors.append(f'{where}: a secret is a string, {{"env": "VAR"}} or {{"file": "/path"}}.')
        return None
    return resolved


def _assign_fields(
    *,
    instance: db_models.Model,
    values: Mapping[str, Any],
    secrets: Iterable[str],
    prefix: str,
    env: Mapping[str, str],
    errors: list[str],
    resolvable: Iterable[str] = (),
) -> None:
    secret_names, resolvable_names = set(secrets), set(resolvable)
    for name, raw in values.items():
        where = f"{prefix}{name}"
        model_field = instance._meta.get_field(name)
        assert isinstance(model_field, db_models.Field)  # config names are concrete fields
        if name in secret_names:
            value = _resolve_secret(raw, where, getattr(instance, name), env, errors)
            if value is _KEEP or value is None:
                continue
        elif name in resolvable_names:
            value = _resolve_value(raw, where, env, errors)
            if value is None:
                continue
        else:
            if isinstance(raw, dict | list):
                errors.append(f"{where}: expected a single value, not {type(raw).__name__}.")
                continue
            if raw is None and not model_field.null:
                errors.append(f"{where}: a value is required (null is not allowed).")
                continue
            try:
                value = model_field.to_python(raw)
            except ValidationError as exc:
                errors.append(f"{where}: {' '.join(exc.messages)}")
                continue
        setattr(instance, name, value)


def _validation_errors(exc: ValidationError, prefix: str) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [
            f"{prefix}{name if name != '__all__' else '(document)'}: {' '.join(messages)}"
            for name, messages in exc.message_dict.items()
        ]
    return [f"{prefix.rstrip('.') or '(document)'}: {' '.join(exc.messages)}"]


def connection_apply(
    *, document: Any, actor: Any = "system:apply_connection", env: Mapping[str, str] | None = None
) -> ConnectionApplied:
    """Create or update the connection named by document["slug"] from a JSON document (the format of
    connection_export). Fields the document leaves out keep their stored (or default) values; a secret
    "***" keeps the stored secret; "webhook_keys", when given, is the full list of keys (matched by scheme
    and label; keys not listed are removed). Everything is validated before anything is written, then
    written in one transaction. Raises ConnectionDocumentError naming every problem."""
    import os

    environment: Mapping[str, str] = os.environ if env is None else env
    errors: list[str] = []
    if not isinstance(document, dict):
        raise ConnectionDocumentError(["(document): a connection document is a JSON object."])
    allowed = set(connection_config_fields()) | {"webhook_keys"}
    for name in document:
        if name not in allowed:
            errors.append(f"{name}: unknown field.")
    slug = document.get("slug")
    if not isinstance(slug, str) or not slug:
        raise ConnectionDocumentError([*errors, "slug: required (the connection's identifier)."])

    stored = Connection.objects.filter(slug=slug).first()
    connection = Connection.objects.get(pk=stored.pk) if stored is not None else Connection()
    _assign_fields(
        instance=connection,
        values={k: v for k, v in document.items() if k in allowed and k != "webhook_keys"},
        secrets=SECRET_FIELDS,
        prefix="",
        env=environment,
        errors=errors,
    )
    try:
        connection.full_clean()
    except ValidationError as exc:
        errors.extend(_validation_errors(exc, ""))

    key_plan = None
    if "webhook_keys" in document:
        key_plan = _plan_webhook_keys(
            connection=stored, entries=document["webhook_keys"], env=environment, errors=errors
        )

    if errors:
        raise ConnectionDocumentError(errors)

    lines: list[str] = []
    with transaction.atomic():
        saved = connection_save(connection=connection, actor=actor, via="apply_connection")
        lines.extend(saved.changes.lines())
        if key_plan is not None:
            to_save, to_delete = key_plan
            for key in to_delete:
                webhook_key_delete(key=key, actor=actor, via="apply_connection")
                lines.append(f"webhook key {key.scheme} {key.label!r}: removed")
            for key in to_save:
                is_new = key.pk is None
                key.connection = connection
                key_changes = webhook_key_save(key=key, actor=actor, via="apply_connection")
                if is_new:
                    lines.append(f"webhook key {key.scheme} {key.label!r}: added")
                else:
                    lines.extend(f"webhook key {key.scheme} {key.label!r}: {line}" for line in key_changes.lines())
    return ConnectionApplied(connection=connection, created=saved.created, changes=lines)


def _plan_webhook_keys(
    *, connection: Connection | None, entries: Any, env: Mapping[str, str], errors: list[str]
) -> tuple[list[WebhookKey], list[WebhookKey]]:
    """Validate the document's webhook keys against the stored ones: (keys to save, keys to delete)."""
    if not isinstance(entries, list):
        errors.append("webhook_keys: a list of keys.")
        return [], []
    existing: dict[tuple[str, str], list[WebhookKey]] = {}
    if connection is not None:
        for key in connection.webhook_keys.all():
            existing.setdefault((key.scheme, key.label), []).append(key)
    seen: set[tuple[str, str]] = set()
    to_save: list[WebhookKey] = []
    for i, entry in enumerate(entries):
        prefix = f"webhook_keys[{i}]."
        if not isinstance(entry, dict):
            errors.append(f"webhook_keys[{i}]: a key is a JSON object.")
            continue
        unknown = [name for name in entry if name not in WEBHOOK_KEY_FIELDS]
        errors.extend(f"{prefix}{name}: unknown field." for name in unknown)
        scheme, label = entry.get("scheme"), entry.get("label", "")
        if not isinstance(scheme, str) or scheme not in WebhookKey.Scheme.values:
            errors.append(f"{prefix}scheme: one of {', '.join(WebhookKey.Scheme.values)}.")
            continue
        if not isinstance(label, str):
            errors.append(f"{prefix}label: a string.")
            continue
        identity = (scheme, label)
        if identity in seen:
            errors.append(f"{prefix}label: another {scheme} key in the document has the label {label!r}.")
            continue
        seen.add(identity)
        matches = existing.get(identity, [])
        if len(matches) > 1:
            errors.append(
                f"{prefix}label: the connection has {len(matches)} {scheme} keys labelled {label!r}; "
                "give them distinct labels in the admin first."
            )
            continue
        key = WebhookKey.objects.get(pk=matches[0].pk) if matches else WebhookKey(scheme=scheme, label=label)
        _assign_fields(
            instance=key,
            values={k: v for k, v in entry.items() if k in WEBHOOK_KEY_FIELDS},
            secrets=WEBHOOK_KEY_SECRET_FIELDS,
            prefix=prefix,
            env=env,
            errors=errors,
            resolvable=("public_key",),
        )
        try:
            key.full_clean(exclude=["connection"])
        except ValidationError as exc:
            errors.extend(_validation_errors(exc, prefix))
        to_save.append(key)
    to_delete = [key for identity, keys in existing.items() if identity not in seen for key in keys]
    return to_save, to_delete


def connection_export(*, connection: Connection) -> dict[str, Any]:
    """The connection as a document for apply_connection, secrets masked as "***" (empty when not set)."""
    document: dict[str, Any] = {}
    for name in connection_config_fields():
        value = getattr(connection, name)
        document[name] = (SECRET_MASK if value else "") if name in SECRET_FIELDS else _plain(value)
    document["webhook_keys"] = [
        {
            name: (SECRET_MASK if key.secret else "")
            if name in WEBHOOK_KEY_SECRET_FIELDS
            else _plain(getattr(key, name))
            for name in WEBHOOK_KEY_FIELDS
        }
        for key in connection.webhook_keys.order_by("scheme", "label", "pk")
    ]
    return document


def connection_document_dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- Key rotation -------------------------------------------------------------------------------------------


def secrets_rotate(*, actor: Any = "system:rotate_secrets") -> dict[str, int]:
    """Re-encrypt every encrypted column of every model with the first of settings.FERNET_KEYS. Every value
    is decrypted first; if one cannot be read with any key, nothing is written. Returns rows per model."""
    from cryptography.fernet import InvalidToken
    from fernet_fields import EncryptedField

    plan: list[tuple[type[db_models.Model], list[str], list[tuple[Any, dict[str, Any]]]]] = []
    unreadable: list[str] = []
    for model in global_apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if not names:
            continue
        rows = []
        for pk in model._base_manager.order_by("pk").values_list("pk", flat=True):
            try:
                values = model._base_manager.filter(pk=pk).values(*names).get()
            except InvalidToken:
                unreadable.append(f"{model._meta.label} {pk}")
                continue
            rows.append((pk, values))
        plan.append((model, names, rows))
    if unreadable:
        raise ValueError(
            "These rows cannot be decrypted with any of FERNET_KEYS (add the key they were written with): "
            + ", ".join(unreadable)
        )
    counts: dict[str, int] = {}
    with transaction.atomic():
        for model, _names, rows in plan:
            for pk, values in rows:
                model._base_manager.filter(pk=pk).update(**values)
            counts[model._meta.label] = len(rows)
        audit_record(
            action="secrets.rotated",
            actor=actor,
            message="Stored credentials re-encrypted with the first FERNET_KEYS key",
            data={"rows": counts},
        )
    return counts


# --- Admin groups -------------------------------------------------------------------------------------------

GROUP_FINANCE = "Finance"
GROUP_INTEGRATION_ADMIN = "Integration admin"
_ALL = ("add_", "change_", "delete_", "view_")
_VIEW = ("view_",)

# (app label, exact codenames or codename prefixes). Prefixes cover models added to an app later; the
# post_migrate handler in connector/apps.py re-applies this after every migrate.
GROUP_PERMISSIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    GROUP_FINANCE: (
        ("connector", ("view_connection", "view_webhookkey", "view_record", "replay_record")),
        ("mappings", _ALL),
        ("audit", ("view_auditevent",)),
        ("commerce", _VIEW),
        ("fusion", _VIEW),
    ),
}
GROUP_PERMISSIONS[GROUP_INTEGRATION_ADMIN] = (
    *GROUP_PERMISSIONS[GROUP_FINANCE],
    (
        "connector",
        ("add_connection", "change_connection", "add_webhookkey", "change_webhookkey", "delete_webhookkey"),
    ),
    (
        "django_celery_beat",
        (
            "view_periodictask",
            "change_periodictask",
            "view_intervalschedule",
            "view_crontabschedule",
            "view_solarschedule",
            "view_clockedschedule",
        ),
    ),
)


def groups_sync(*, apps: Any = global_apps, using: str = "default") -> None:
    """Create the two admin groups if missing and grant them every permission GROUP_PERMISSIONS names that
    exists now. Additive: permissions an operator granted by hand are kept. `apps` may be a migration's
    historical registry."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, grants in GROUP_PERMISSIONS.items():
        match = Q(pk__in=[])
        for app_label, codes in grants:
            exact = [c for c in codes if not c.endswith("_")]
            prefixes = [c for c in codes if c.endswith("_")]
            app_match = Q(codename__in=exact)
            for prefix in prefixes:
                app_match |= Q(codename__startswith=prefix)
            match |= Q(content_type__app_label=app_label) & app_match
        group, _ = Group.objects.using(using).get_or_create(name=group_name)
        wanted = set(Permission.objects.using(using).filter(match).values_list("pk", flat=True))
        have = set(group.permissions.values_list("pk", flat=True))
        if wanted - have:
            group.permissions.add(*(wanted - have))
