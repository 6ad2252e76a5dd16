"""The schedules of the sync from Fusion: per connection, its sync settings, and per stream (customers, items, GL
assignments) a SyncStream row and a django-celery-beat periodic task with the connection id and the stream as
arguments. Created when a connection is created (a post_save hook this app registers, so the connector app never
imports sync) and, for every connection, by `manage.py ensure_schedules`. After that the interval is edited, and
a stream paused, in the admin (Periodic tasks, or Sync › Streams); nothing here overwrites them."""

from __future__ import annotations

import json

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from connector.models import Connection

from .models import FusionSyncSettings, Stream, SyncStream

TASK = "sync.fusion_sync"
QUEUE = "sync"
DEFAULT_SECONDS = {Stream.CUSTOMERS: 3600, Stream.ITEMS: 900, Stream.GL: 300}
DESCRIPTIONS = {
    Stream.CUSTOMERS: "Fusion customer accounts and bill-to sites to Commerce customers (a full read, compared by "
    "content).",
    Stream.ITEMS: "Fusion items changed since the watermark to Commerce products.",
    Stream.GL: "After a mapping rule changes, the GL attribute of the Commerce customers and products it concerns.",
}


def task_name(connection: Connection, stream: str) -> str:
    return f"fusion sync {stream} {connection.slug}"


def fusion_streams_ensure(connection: Connection) -> list[str]:
    """Create what is missing (settings, streams, periodic tasks) and leave the rest as edited. Returns the names of
    the periodic tasks created."""
    created: list[str] = []
    with transaction.atomic():
        FusionSyncSettings.objects.get_or_create(connection=connection)
        for stream in Stream:
            row, _ = SyncStream.objects.get_or_create(connection=connection, stream=stream)
            if row.task_id is not None:
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=DEFAULT_SECONDS[stream], period=IntervalSchedule.SECONDS
            )
            name = task_name(connection, stream)
            task, made = PeriodicTask.objects.get_or_create(
                name=name,
                defaults={
                    "task": TASK,
                    "interval": interval,
                    "args": json.dumps([connection.pk, str(stream)]),
                    "queue": QUEUE,
                    "description": DESCRIPTIONS[stream],
                },
            )
            if not made:  # a task of that name left by an earlier connection with the same slug
                task.task, task.args, task.queue = TASK, json.dumps([connection.pk, str(stream)]), QUEUE
                task.save()
            row.task = task
            row.save(update_fields=["task"])
            if made:
                created.append(name)
    return created


def fusion_schedules_ensure_all() -> list[str]:
    created: list[str] = []
    for connection in Connection.objects.order_by("pk"):
        created.extend(fusion_streams_ensure(connection))
    return created


def on_connection_saved(sender, instance: Connection, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        fusion_streams_ensure(instance)


def on_stream_deleted(sender, instance: SyncStream, **kwargs) -> None:
    """A stream goes with its connection: its periodic task goes with it."""
    if instance.task_id is not None:
        PeriodicTask.objects.filter(pk=instance.task_id).delete()
