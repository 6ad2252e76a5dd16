"""Column values for a hand-written INSERT of a new row, prepared the cheap way: the webhook's one statement runs
for every order placed, and building model instances (signals, __init__) and Django's per-field
get_db_prep_save(pre_save()) were a fifth of a request's CPU. No model instance is built; only what the
database driver cannot take as it is gets converted, and fields not given take their model default."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone
from fernet_fields import EncryptedField

Prepare = Callable[[Mapping[str, Any], Any, Any], Any]  # (given values, now, the connection's operations)
# Field types whose Python values psycopg adapts as they are (aware datetimes, Decimal, str, int, bool, None).
PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.DecimalField,
    models.DateTimeField,
    models.DateField,
    models.FloatField,
    models.ForeignKey,
    models.GenericIPAddressField,
)


class JsonText(str):
    """A JSONField value already serialised (for a large document built for the hot path): sent as it is."""


def _value(field: models.Field) -> Callable[[Mapping[str, Any]], Any]:
    """The given value (by attname, e.g. `connection_id`), else the field's default, as Model() would."""
    attname, default = field.attname, field.get_default
    return lambda given: given[attname] if attname in given else default()


def _json(field: models.JSONField, vendor: str) -> Prepare:
    value = _value(field)

    def prepare(given: Mapping[str, Any], now: Any, ops: Any) -> Any:
        data = value(given)
        if type(data) is JsonText:
            return ops.adapt_json_value(data, _AsIs) if vendor == "postgresql" else str(data)
        if vendor == "postgresql":
            return ops.adapt_json_value(data, field.encoder)
        return field.get_db_prep_save(data, ops.connection)

    return prepare


class _AsIs(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return str(o)


def _preparer(field: models.Field, vendor: str) -> Prepare:
    value = _value(field)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        if vendor == "postgresql":
            return lambda given, now, ops: now
        return lambda given, now, ops: field.get_db_prep_save(now, ops.connection)
    if isinstance(field, models.JSONField):
        return _json(field, vendor)
    if vendor != "postgresql":  # other backends need Django's own conversions (SQLite: datetimes)
        return lambda given, now, ops: field.get_db_prep_save(value(given), ops.connection)
    if isinstance(field, PLAIN) and not isinstance(field, EncryptedField):
        return _value_only(value)
    # Anything unusual (encrypted, binary, custom) goes the full way.
    return lambda given, now, ops: field.get_db_prep_save(value(given), ops.connection)


def _value_only(value: Callable[[Mapping[str, Any]], Any]) -> Prepare:
    return lambda given, now, ops: value(given)


class _Plan(NamedTuple):
    """How to fill the columns of one INSERT: a template of the values that never change (constant defaults),
    then the slots taken from the given values, the slots stamped with the current time, and the rest."""

    template: tuple[Any, ...]
    given: tuple[tuple[int, str], ...]
    stamped: tuple[int, ...]
    computed: tuple[tuple[int, Prepare], ...]


def _is_plain(field: models.Field) -> bool:
    return isinstance(field, PLAIN) and not isinstance(field, EncryptedField | models.JSONField)


@functools.cache
def _plan(model: type[models.Model], names: tuple[str, ...], given: tuple[str, ...], vendor: str) -> _Plan:
    fields = {f.name: f for f in model._meta.concrete_fields}
    template: list[Any] = []
    taken, stamped, computed = [], [], []
    for slot, name in enumerate(names):
        field = fields[name]
        template.append(None)
        if vendor != "postgresql":  # other backends need Django's own conversions (SQLite: datetimes)
            computed.append((slot, _preparer(field, vendor)))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            stamped.append(slot)
        elif _is_plain(field) and field.attname in given:
            taken.append((slot, field.attname))
        elif _is_plain(field) and not callable(field.default):
            template[slot] = field.get_default()
        else:
            computed.append((slot, _preparer(field, vendor)))
    return _Plan(tuple(template), tuple(taken), tuple(stamped), tuple(computed))


def insert_values(
    model: type[models.Model], fields: Sequence[models.Field], given: Mapping[str, Any], now: Any = None
) -> list[Any]:
    """The values of `fields` for INSERTing a new `model` row holding `given` (field attnames to values), as the
    driver takes them: the rest take their defaults, auto_now fields `now` (default: the current time)."""
    now = now or timezone.now()
    database = connections[DEFAULT_DB_ALIAS]  # once, not through the thread-local proxy for every column
    plan = _plan(model, tuple(f.name for f in fields), tuple(given), database.vendor)
    values = list(plan.template)
    for slot, attname in plan.given:
        values[slot] = given[attname]
    for slot in plan.stamped:
        values[slot] = now
    ops = database.ops
    for slot, prepare in plan.computed:
        values[slot] = prepare(given, now, ops)
    return values
