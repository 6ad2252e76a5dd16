"""A worker keeps its database connection from one task to the next (a new PostgreSQL backend per task cost
about as much PostgreSQL CPU as the posting itself), yet never carries a broken one into the next task."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from config.celery import app
from sync.tasks import process_record


@pytest.fixture
def worker_fixup() -> Iterator[DjangoWorkerFixup]:
    """Celery's Django fixup as a worker installs it (its signal handlers close the connections around tasks)."""
    fixup = DjangoWorkerFixup(app).install()
    yield fixup
    signals.task_prerun.disconnect(fixup.on_task_prerun)
    signals.task_postrun.disconnect(fixup.on_task_postrun)
    signals.worker_process_init.disconnect(fixup.on_worker_process_init)
    signals.beat_embedded_init.disconnect(fixup.close_database)


def run_as_worker(body) -> None:
    signals.task_prerun.send(sender=process_record, task_id="t", task=process_record, args=(), kwargs={})
    body()
    signals.task_postrun.send(
        sender=process_record, task_id="t", task=process_record, args=(), kwargs={}, retval=None, state="SUCCESS"
    )


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_worker_keeps_its_connection_from_task_to_task(worker_fixup) -> None:
    pids = []
    for _ in range(5):
        run_as_worker(lambda: pids.append(backend_pid()))
    assert len(set(pids)) == 1


@pytest.mark.django_db(transaction=True)
def test_worker_drops_a_connection_a_task_left_broken(worker_fixup) -> None:
    def break_it() -> None:
        backend_pid()
        connection.connection.close()  # the server went away under the task
        connection.errors_occurred = True

    run_as_worker(break_it)
    pids = []
    run_as_worker(lambda: pids.append(backend_pid()))
    assert pids and pids[0] > 0
