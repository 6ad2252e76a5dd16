"""A connection as a JSON document: `apply_connection` creates or updates one from it, `export_connection`
writes it out with secrets masked. Everything is validated before anything is written."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models as db_models
from django.db import transaction

from .connections import (
    SECRET_MASK,
    WEBHOOK_KEY_FIELDS,
    WEBHOOK_KEY_SECRET_FIELDS,
    ConnectionSaved,
    connection_config_fields,
    connection_save,
    host_changes,
    plain_value,
    secrets_kept_across_host_change,
    webhook_key_delete,
    webhook_key_save,
)
from .models import SECRET_FIELDS, Connection, WebhookKey


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
    # The secrets the document sets: a value, {"env"}/{"file"} or "" (clear); "***" and leaving one out keep it.
    secrets_given = frozenset(name for name in SECRET_FIELDS if name in document and document[name] != SECRET_MASK)
    if stored is not None:
        errors.extend(_host_change_errors(before=stored, after=connection, given=secrets_given))

    key_plan = None
    if "webhook_keys" in document:
        key_plan = _plan_webhook_keys(
            connection=stored, entries=document["webhook_keys"], env=environment, errors=errors
        )

    if errors:
        raise ConnectionDocumentError(errors)

    saved, lines = _write(connection=connection, key_plan=key_plan, secrets_given=secrets_given, actor=actor)
    return ConnectionApplied(connection=connection, created=saved.created, changes=lines)


def _write(
    *,
    connection: Connection,
    key_plan: tuple[list[WebhookKey], list[WebhookKey]] | None,
    secrets_given: frozenset[str],
    actor: Any,
) -> tuple[ConnectionSaved, list[str]]:
    """Save a validated connection and its webhook keys in one transaction; the lines say what changed."""
    lines: list[str] = []
    with transaction.atomic():
        saved = connection_save(connection=connection, actor=actor, via="apply_connection", secrets_given=secrets_given)
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
    return saved, lines


def _host_change_errors(*, before: Connection, after: Connection, given: frozenset[str]) -> list[str]:
    """A document that moves a side to another host must give that side's stored secrets again (or "" to clear
    them): a stored secret is never sent to a host it was not given for."""
    moved = host_changes(before=before, after=after)
    kept = secrets_kept_across_host_change(before=before, after=after, given=given)
    return [
        f"{name}: the {side} host changes ({', '.join(moved[side])}), so the stored secret is not kept; give it "
        'again, or "" to clear it.'
        for side, names in kept.items()
        for name in names
    ]


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
        document[name] = (SECRET_MASK if value else "") if name in SECRET_FIELDS else plain_value(value)
    document["webhook_keys"] = [
        {
            name: (SECRET_MASK if key.secret else "")
            if name in WEBHOOK_KEY_SECRET_FIELDS
            else plain_value(getattr(key, name))
            for name in WEBHOOK_KEY_FIELDS
        }
        for key in connection.webhook_keys.order_by("scheme", "label", "pk")
    ]
    return document


def connection_document_dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
