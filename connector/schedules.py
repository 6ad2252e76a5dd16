"""The default beat schedule. `manage.py ensure_schedules` creates these in django-celery-beat once; after
that the intervals are edited in the admin (Periodic tasks) and kept."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str


DEFAULT_SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "relay",
        "connector.relay",
        30,
        "Wake records whose next attempt is due or whose lease expired (survives a lost broker message).",
    ),
)
