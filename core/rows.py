"""Column values for a hand-written INSERT of a new row, prepared the cheap way: the webhook's one statement runs
for every order placed, and building model instances (signals, __init__) and Django's per-field
get_db_prep_save(pre_save()) were a fifth of a request's CPU. No model instance is built; only what the
database driver cannot take as it is gets converted, and fields not given take their model default."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
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
        if data is None:  # SQL NULL, as JSONField.get_db_prep_save writes None (JSON null needs Value(None))
            return None
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
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):  # PostgreSQL: _plan stamps
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
    """How to write one INSERT's columns: constant defaults as SQL literals (no parameter to send), then the
    parameter slots taken from the given values, the slots stamped with the current time, and the rest."""

    columns: str
    expressions: str
    given: tuple[tuple[int, str], ...]
    stamped: tuple[int, ...]
    computed: tuple[tuple[int, Prepare], ...]
    size: int


def _is_plain(field: models.Field) -> bool:
    return isinstance(field, PLAIN) and not isinstance(field, EncryptedField | models.JSONField)


def _literal(value: Any) -> str | None:
    """A constant default as SQL, for the simple types whose literal cannot be mistaken; None: send it."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return "'" + str(value).replace("'", "''") + "'"
    return None


@functools.cache
def _plan(model: type[models.Model], exclude: tuple[str, ...], given: tuple[str, ...], vendor: str) -> _Plan:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in exclude]
    expressions: list[str] = []
    taken, stamped, computed = [], [], []
    slot = 0  # the next parameter
    for field in fields:
        now_stamped = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        if vendor == "postgresql" and _is_plain(field) and not now_stamped and field.attname not in given:
            computed_default = field.has_default() and callable(field.default)
            constant = None if computed_default else _literal(field.get_default())
            if constant is not None:
                expressions.append(constant)
                continue
        expressions.append("%s")
        if vendor != "postgresql":  # other backends need Django's own conversions (SQLite: datetimes)
            computed.append((slot, _preparer(field, vendor)))
        elif now_stamped:
            stamped.append(slot)
        elif _is_plain(field) and field.attname in given:
            taken.append((slot, field.attname))
        else:
            computed.append((slot, _preparer(field, vendor)))
        slot += 1
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return _Plan(
        columns=", ".join(quote(f.column) for f in fields),
        expressions=", ".join(expressions),
        given=tuple(taken),
        stamped=tuple(stamped),
        computed=tuple(computed),
        size=slot,
    )


def insert_row(
    model: type[models.Model], given: Mapping[str, Any], *, exclude: tuple[str, ...] = (), now: Any = None
) -> tuple[str, str, list[Any]]:
    """A new `model` row holding `given` (field attnames to values), for a hand-written INSERT of every concrete
    column but the primary key and `exclude`: (column list, select expressions, parameters). Fields not given
    take their defaults (constants written into the SQL on PostgreSQL), auto_now fields `now` (default: the
    current time); values are prepared as the driver takes them."""
    now = now or timezone.now()
    database = connections[DEFAULT_DB_ALIAS]  # once, not through the thread-local proxy for every column
    plan = _plan(model, exclude, tuple(given), database.vendor)
    values: list[Any] = [None] * plan.size
    for slot, attname in plan.given:
        values[slot] = given[attname]
    for slot in plan.stamped:
        values[slot] = now
    ops = database.ops
    for slot, prepare in plan.computed:
        values[slot] = prepare(given, now, ops)
    return plan.columns, plan.expressions, values
