"""An idle beat cycle: every periodic task run a second time with nothing changed in Fusion or Commerce makes one
Fusion request per sync stream, none to Commerce from the streams, and writes nothing to the database."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection as db
from django.utils import timezone

from fusion.models import JournalBatch
from sync import tasks
from sync.models import FusionSyncSettings
from tests import mockservers
from tests.posting import seed_mappings

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@contextmanager
def counted_writes() -> Iterator[Counter]:
    """INSERT/UPDATE/DELETE statements sent to the database inside the block, by table (the first quoted name);
    rows changed by them under (table, "rows")."""
    writes: Counter = Counter()

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if WRITE.match(sql):
            table = re.search(r'"(\w+)"', sql)
            name = table.group(1) if table else sql[:40]
            writes[name] += 1
            writes[(name, "rows")] += max(0, context["cursor"].rowcount)
        return result

    with db.execute_wrapper(wrapper):
        yield writes


def requests_of(mock) -> int:
    return sum(mock.requests_by_path.values())


@pytest.fixture
def connection(db, allow_local_endpoints, token_cache, fusion_mock, commerce_mock):
    connection = mockservers.mock_connection(fusion_mock, commerce_mock)
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="M1")
    seed_mappings(connection)  # a segment layout: the reference refresh reads the account combinations too
    cache.clear()
    return connection


# name: (the task, Fusion requests, Commerce requests) of a run with nothing changed
def periodic_tasks(connection_id: int) -> dict[str, tuple[Callable[[], object], int, int]]:
    return {
        # customerAccountSitesLOV, read whole (it has no change stamp)
        "fusion sync customers": (lambda: tasks.fusion_sync(connection_id, "customers"), 1, 0),
        # itemsV2 since the watermark
        "fusion sync items": (lambda: tasks.fusion_sync(connection_id, "items"), 1, 0),
        # no rule changed: nothing to read
        "fusion sync gl": (lambda: tasks.fusion_sync(connection_id, "gl"), 0, 0),
        "relay": (tasks.relay_due_records, 0, 0),
        # orders, invoices and credit memos since the watermark
        "backfill": (lambda: tasks.backfill_connection(connection_id), 0, 3),
        "purge": (tasks.purge_bodies, 0, 0),
        "journal ship": (tasks.ship_journals, 0, 0),
        # customerAccountSitesLOV and accountCombinationsLOV, read whole
        "reference refresh": (lambda: tasks.refresh_reference(connection_id), 2, 0),
        "reconciliation": (lambda: tasks.reconcile_daily(connection_id), 0, 0),
    }


# A statement an idle run still sends, that changes no row: the purge's cleanup of old rejection counters (one
# DELETE by date, in commerce.deliveries).
CHANGES_NO_ROW = {"purge": {"commerce_deliveryrejection"}}


@pytest.mark.parametrize("name", list(periodic_tasks(0)))
def test_a_periodic_task_run_again_with_nothing_changed_writes_nothing(name, connection, fusion_mock, commerce_mock):
    task, fusion_requests, commerce_requests = periodic_tasks(connection.pk)[name]
    first = task()
    fusion_before, commerce_before = dict(fusion_mock.requests_by_path), dict(commerce_mock.requests_by_path)
    with counted_writes() as writes:
        second = task()
    statements = {table: n for table, n in writes.items() if isinstance(table, str)}
    rows = {table: n for (table, _), n in ((k, v) for k, v in writes.items() if isinstance(k, tuple))}
    allowed = CHANGES_NO_ROW.get(name, set())
    assert {t: n for t, n in statements.items() if t not in allowed} == {}, (name, first, second)
    assert {t: n for t, n in rows.items() if n} == {}, (name, first, second)
    assert requests_of(fusion_mock) - sum(fusion_before.values()) == fusion_requests, (
        fusion_before,
        fusion_mock.requests_by_path,
    )
    assert requests_of(commerce_mock) - sum(commerce_before.values()) == commerce_requests, (
        commerce_before,
        commerce_mock.requests_by_path,
    )


def test_journal_ship_leaves_a_batch_still_filling_and_an_import_not_due_for_a_poll(connection, fusion_mock):
    now = timezone.now()
    JournalBatch.objects.create(
        connection=connection, state=JournalBatch.State.OPEN, group_id=900_001, name="filling", line_count=3
    )
    JournalBatch.objects.create(
        connection=connection,
        state=JournalBatch.State.RUNNING,
        group_id=900_002,
        name="importing",
        line_count=5,
        next_poll_at=now + timedelta(minutes=5),
    )
    before = requests_of(fusion_mock)
    with counted_writes() as writes:
        assert tasks.ship_journals() == "0 closed, 0 submitted, 0 polled"
    assert dict(writes) == {}
    assert requests_of(fusion_mock) == before
