"""Thin Celery doors: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import relay


@shared_task(name="connector.process_record", ignore_result=True)
def process_record(record_id: int) -> str:
    from .pipeline import record_process

    return record_process(record_id=record_id)


@shared_task(name="connector.relay", ignore_result=True)
def relay_due_records() -> int:
    return relay.relay_due(limit=500)
