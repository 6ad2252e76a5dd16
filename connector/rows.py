"""Column values of an unsaved model instance for a hand-written INSERT, prepared the cheap way: the webhook's
one statement runs for every order placed, and Django's per-field get_db_prep_save(pre_save()) was a fifth of
a request's CPU. Only what the database driver cannot take as it is gets converted."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection as db_connection
from django.db import models
from django.utils import timezone
from fernet_fields import EncryptedField

Prepare = Callable[[models.Model, Any], Any]
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


def _full(field: models.Field) -> Prepare:
    return lambda obj, now: field.get_db_prep_save(field.pre_save(obj, add=True), db_connection)


def _stamped(attname: str) -> Prepare:
    def prepare(obj: models.Model, now: Any) -> Any:
        setattr(obj, attname, now)
        return now

    return prepare


def _json(field: models.JSONField) -> Prepare:
    return lambda obj, now: db_connection.ops.adapt_json_value(getattr(obj, field.attname), field.encoder)


def _plain(attname: str) -> Prepare:
    return lambda obj, now: getattr(obj, attname)


@functools.cache
def _preparers(model: type[models.Model], names: tuple[str, ...], vendor: str) -> tuple[Prepare, ...]:
    fields = {f.name: f for f in model._meta.concrete_fields}
    preparers: list[Prepare] = []
    for name in names:
        field = fields[name]
        if vendor != "postgresql":  # other backends need Django's own conversions (SQLite: datetimes)
            preparers.append(_full(field))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            preparers.append(_stamped(field.attname))
        elif isinstance(field, models.JSONField):
            preparers.append(_json(field))
        elif isinstance(field, PLAIN) and not isinstance(field, EncryptedField):
            preparers.append(_plain(field.attname))
        else:  # anything unusual (encrypted, binary, custom) goes the full way
            preparers.append(_full(field))
    return tuple(preparers)


def row_values(obj: models.Model, fields: Sequence[models.Field]) -> list[Any]:
    """The values of `fields` for INSERTing `obj`, as the driver takes them (auto_now fields are stamped)."""
    now = timezone.now()
    preparers = _preparers(type(obj), tuple(f.name for f in fields), db_connection.vendor)
    return [prepare(obj, now) for prepare in preparers]
