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
    Schedule(
        "commerce backfill",
        "commerce.backfill_all",
        300,
        "Pull Commerce orders, invoices and credit memos changed since each connection's watermark and create "
        "records for any that no webhook brought.",
    ),
    Schedule(
        "commerce purge",
        "commerce.purge_bodies",
        86400,
        "Empty raw webhook bodies older than CONNECTOR_PAYLOAD_RETENTION_DAYS (records and audit stay).",
    ),
    Schedule(
        "journal ship",
        "fusion.ship_journals",
        60,
        "Close journal batches whose window has passed, submit them to Fusion as FBDI imports and follow the ESS jobs.",
    ),
    Schedule(
        "fusion reference refresh",
        "fusion.refresh_reference_all",
        900,
        "Refresh the cached Fusion customer accounts, sites and account combinations of every enabled connection.",
    ),
    Schedule(
        "reconciliation",
        "sync.reconcile_daily_all",
        3600,
        "Reconcile yesterday (each connection's time zone) once a day: Commerce documents against Fusion AR "
        "documents. Runs hourly; a day already reconciled is not run again, a failed one is retried.",
    ),
)
