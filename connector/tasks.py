"""Thin Celery doors: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import Task, shared_task

from . import relay
from .models import Connection


def fan_out_per_connection(task: Task) -> int:
    """Beat's fan-out: send `task(connection_id)` once for every enabled connection, each on its own, so one slow
    or failing connection does not hold up the others. Returns how many were sent."""
    ids = list(Connection.objects.filter(enabled=True).values_list("pk", flat=True))
    for connection_id in ids:
        task.apply_async(args=[connection_id], retry=False)
    return len(ids)


@shared_task(name="connector.process_record", ignore_result=True)
def process_record(record_id: int) -> str:
    from .pipeline import record_process

    return record_process(record_id=record_id)


@shared_task(name="connector.wake_records", ignore_result=True)
def wake_records(record_ids: list[int]) -> int:
    """A batch of wake-ups from a web process, fanned out as one process_record message per record."""
    from .services import record_wake

    for record_id in record_ids:
        record_wake(record_id=record_id)
    return len(record_ids)


@shared_task(name="connector.relay", ignore_result=True)
def relay_due_records() -> int:
    return relay.relay_due(limit=500)
