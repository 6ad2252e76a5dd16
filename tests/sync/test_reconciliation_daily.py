"""The daily reconciliation: yesterday in each connection's time zone, once it is past 02:00 there, once a day
(again only after a failure); installed by ensure_schedules; and the task an admin-started run goes through."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from connector.models import Connection
from core.locks import single_run
from sync.flows.reconciliation import reconciliation_daily, reconciliation_start
from sync.models import ReconciliationRun
from sync.tasks import reconcile, reconcile_daily, reconcile_daily_all
from tests import mockservers

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock


@pytest.fixture
def connection(db, allow_local_endpoints, token_cache, fusion_mock, commerce_mock):
    connection = mockservers.mock_connection(fusion_mock, commerce_mock, time_zone="Europe/Paris")
    cache.clear()
    return connection


def test_yesterday_is_reconciled_once_after_two_in_the_morning_local_time(connection):
    # 00:30 UTC is 01:30 in Paris: too early, yesterday's last documents may still be on their way.
    assert reconciliation_daily(connection_id=connection.pk, now=datetime(2026, 11, 4, 0, 30, tzinfo=UTC)) is None
    run_id = reconciliation_daily(connection_id=connection.pk, now=datetime(2026, 11, 4, 1, 30, tzinfo=UTC))
    run = ReconciliationRun.objects.get(pk=run_id)
    assert (run.date_from, run.date_to, run.status) == (date(2026, 11, 3), date(2026, 11, 3), "ok")
    assert reconciliation_daily(connection_id=connection.pk, now=datetime(2026, 11, 4, 9, 0, tzinfo=UTC)) is None
    assert ReconciliationRun.objects.count() == 1


def test_a_failed_day_is_tried_again_and_a_disabled_connection_is_left_alone(connection):
    Connection.objects.filter(pk=connection.pk).update(fusion_client_secret="wrong-secret")
    now = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
    failed = ReconciliationRun.objects.get(pk=reconciliation_daily(connection_id=connection.pk, now=now))
    assert failed.status == ReconciliationRun.Status.FAILED
    Connection.objects.filter(pk=connection.pk).update(fusion_client_secret=connection.fusion_client_secret)
    cache.clear()
    again = ReconciliationRun.objects.get(pk=reconciliation_daily(connection_id=connection.pk, now=now))
    assert again.status == ReconciliationRun.Status.OK
    Connection.objects.filter(pk=connection.pk).update(enabled=False)
    assert reconciliation_daily(connection_id=connection.pk, now=datetime(2026, 11, 5, 6, 0, tzinfo=UTC)) is None


def test_ensure_schedules_installs_the_daily_run(db):
    call_command("ensure_schedules", stdout=io.StringIO())
    task = PeriodicTask.objects.get(name="reconciliation")
    assert task.task == reconcile_daily_all.name and task.enabled


def test_the_task_runs_a_started_run_once(connection):
    run = reconciliation_start(
        connection=connection, date_from=date(2026, 11, 3), date_to=date(2026, 11, 3), actor="fiona"
    )
    assert reconcile(run.pk) == "ok"
    run.refresh_from_db()
    finished = run.finished_at
    assert reconcile(run.pk) == "already finished or gone"
    run.refresh_from_db()
    assert run.finished_at == finished


def test_the_daily_task_does_not_start_a_second_run_while_one_is_going(connection):
    with single_run(f"sync:reconcile-daily:{connection.pk}", seconds=60) as mine:
        assert mine
        assert reconcile_daily(connection.pk) == "already running"
    assert ReconciliationRun.objects.count() == 0
