"""The hand-written SQL of the webhook door, in one place: the INSERT of a verified delivery (the request's only
write, on the path of every order placed), the worker's UPDATE of a batch of deliveries it read, and the flush
of the refusal counters. Everything else goes through the ORM. tests/commerce/test_sql.py checks that the rows
written here are the rows the ORM would write.

Why by hand: building a model instance and running Django's save() for the delivery cost more than the INSERT's
parameters themselves (bench/README.md); the statement is the same on every delivery, so PostgreSQL prepares it
once per connection (DB_PREPARE_THRESHOLD).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db.backends.base.base import BaseDatabaseWrapper

from .models import Delivery, DeliveryRejection

_DELIVERY_COLUMNS = (
    "received_at",
    "connection_id",
    "status",
    "verifier",
    "event_name",
    "request_id",
    "source_ip",
    "headers",
    "body",
    "body_sha256",
    "note",
    "record_id",
    "body_purged_at",
)
# Constant for every new delivery: written as literals, not sent as parameters.
_DELIVERY_SQL = (
    f"INSERT INTO {Delivery._meta.db_table} ({', '.join(_DELIVERY_COLUMNS)}) "  # noqa: S608 - constants only
    f"VALUES (%s, %s, '{Delivery.Status.RECEIVED.value}', %s, %s, %s, %s, %s, %s, '', '', NULL, NULL) RETURNING id"
)


def delivery_insert(
    database: BaseDatabaseWrapper,
    *,
    received_at: datetime,
    connection_id: int,
    verifier: str,
    event_name: str,
    request_id: str,
    source_ip: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> int:
    """Store a verified delivery as `received` (autocommit: durable when this returns); its id. The values are
    cut to their columns by the caller."""
    with database.cursor() as cursor:
        cursor.execute(
            _DELIVERY_SQL,
            [
                received_at,
                connection_id,
                verifier,
                event_name,
                request_id,
                source_ip,
                orjson.dumps(dict(headers)).decode(),
                body,
            ],
        )
        return cursor.fetchone()[0]


_REJECTION_SQL = (
    f"INSERT INTO {DeliveryRejection._meta.db_table} (scope, connection_id, reason, minute, count, "  # noqa: S608
    "last_seen_at, last_source_ip, last_detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (scope, reason, minute) DO UPDATE SET "
    f"count = {DeliveryRejection._meta.db_table}.count + excluded.count, "
    "last_seen_at = excluded.last_seen_at, last_source_ip = excluded.last_source_ip, "
    "last_detail = excluded.last_detail"
)


def rejections_add(database: BaseDatabaseWrapper, rows: Iterable[tuple[Any, ...]]) -> None:
    """Add counted refusals to their (scope, reason, minute) rows, whatever the volume one statement per row;
    each row is (scope, connection id or None, reason, minute, count, last seen at, last source ip, last
    detail). ON CONFLICT is the same in PostgreSQL and SQLite."""
    with database.cursor() as cursor:
        cursor.executemany(_REJECTION_SQL, list(rows))


_READ_COLUMNS = ("status", "event_name", "request_id", "note", "record_id", "body_sha256")


def deliveries_read(
    database: BaseDatabaseWrapper, rows: Sequence[tuple[int, str, str, str, str, int | None, str]]
) -> None:
    """Set what a worker made of each delivery of a batch in one statement: rows of (id, status, event name,
    request id, note, record id or None, body SHA-256), values cut to their columns by the caller. (Django's
    bulk_update builds a CASE per column and row, which cost more than the reads themselves.)"""
    if not rows:
        return
    if database.vendor != "postgresql":  # SQLite has no column names for a VALUES list: one UPDATE a row
        for row in rows:
            Delivery.objects.filter(pk=row[0]).update(**dict(zip(_READ_COLUMNS, row[1:], strict=True)))
        return
    table = Delivery._meta.db_table
    values = ", ".join(["(%s::bigint, %s, %s, %s, %s, %s::bigint, %s)"] * len(rows))
    sets = ", ".join(f"{column} = v.{column}" for column in _READ_COLUMNS)
    sql = (
        f"UPDATE {table} AS d SET {sets} FROM (VALUES {values}) "  # noqa: S608 - constants and placeholders only
        f"AS v(id, {', '.join(_READ_COLUMNS)}) WHERE d.id = v.id"
    )
    with database.cursor() as cursor:
        cursor.execute(sql, [value for row in rows for value in row])
