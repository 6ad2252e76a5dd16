"""The figures Prometheus reads that are database state, computed at scrape time (README "Metrics").

Records by state, what is pending and for how long, journal batches by state and sync runs by outcome are
what the database says at the moment of the scrape, whichever process answers it and whether or not a worker
is alive: a fixed handful of aggregate queries, whatever the number of connections or rows. The counters and
histograms of core/metrics.py are summed from every process's files (multiprocess mode) or read from this
process (one process).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from commerce.models import Delivery
from connector.models import Connection, Record
from core.metrics import POSTING_LATENCY, multiprocess_dir, multiprocess_files
from fusion.models import JournalBatch

from .models import SyncRun


def posting_observe(*, record: Record) -> None:
    """The record's AR document is posted (in the caller's transaction): once that commits, observe the time
    from its first delivery's receipt (the record's creation when no webhook brought it: backfill, manual)."""
    received = Delivery.objects.filter(record_id=record.pk).aggregate(first=Min("received_at"))["first"]
    seconds = max(0.0, (timezone.now() - (received or record.created_at)).total_seconds())
    slug = record.connection.slug
    transaction.on_commit(lambda: POSTING_LATENCY.labels(slug).observe(seconds))


class DatabaseCollector:
    """Gauges from the database, for a scrape. Five queries, whatever is in the tables."""

    def collect(self) -> Iterator[Metric]:
        slugs = dict(Connection.objects.values_list("pk", "slug"))
        now = timezone.now()
        yield from self._records(slugs, now)
        yield self._journal_batches(slugs)
        yield self._sync_runs(slugs)

    def _records(self, slugs: dict[int, str], now: datetime) -> Iterator[Metric]:
        counts = {(slug, state): 0 for slug in slugs.values() for state in Record.State.values}
        pending = {(slug, stage): 0 for slug in slugs.values() for stage in STAGES}
        since: dict[str, datetime] = {}

        def waiting(slug: str, stage: str, n: int, first: datetime) -> None:
            pending[(slug, stage)] = pending.get((slug, stage), 0) + n
            since[slug] = min(first, since.get(slug, first))

        records = Record.objects.order_by().values_list("connection_id", "state")
        for connection_id, state, n, first in records.annotate(n=Count("pk"), first=Min("created_at")):
            slug = slugs.get(connection_id, "")
            counts[(slug, state)] = counts.get((slug, state), 0) + n
            if state in Record.ACTIVE_STATES:
                waiting(slug, "record", n, first)
        unread = Delivery.objects.filter(status=Delivery.Status.RECEIVED).order_by().values_list("connection_id")
        for connection_id, n, first in unread.annotate(n=Count("pk"), first=Min("received_at")):
            waiting(slugs.get(connection_id, ""), "delivery", n, first)

        yield _family(
            "ml_connector_records",
            "Records (Commerce documents) by connection and state.",
            counts,
            ["connection", "state"],
        )
        yield _family(
            "ml_connector_pending",
            "Work not done yet: deliveries no worker has read (delivery), records a worker has still to post (record).",
            pending,
            ["connection", "stage"],
        )
        ages = {(slug,): 0.0 for slug in slugs.values()}
        ages.update({(slug,): max(0.0, (now - first).total_seconds()) for slug, first in since.items()})
        yield _family(
            "ml_connector_oldest_pending_age_seconds",
            "Age of the oldest pending delivery or record, in seconds (0 when nothing is pending).",
            ages,
            ["connection"],
        )

    def _journal_batches(self, slugs: dict[int, str]) -> Metric:
        counts = {(slug, state): 0 for slug in slugs.values() for state in JournalBatch.State.values}
        for connection_id, state, n in (
            JournalBatch.objects.order_by().values_list("connection_id", "state").annotate(n=Count("pk"))
        ):
            key = (slugs.get(connection_id, ""), state)
            counts[key] = counts.get(key, 0) + n
        return _family(
            "ml_connector_journal_batches",
            "GL journal batches by connection and state.",
            counts,
            ["connection", "state"],
        )

    def _sync_runs(self, slugs: dict[int, str]) -> Metric:
        counts: dict[tuple[str, ...], float] = {}
        for connection_id, stream, status, n in (
            SyncRun.objects.order_by().values_list("connection_id", "stream", "status").annotate(n=Count("pk"))
        ):
            key = (slugs.get(connection_id, ""), stream, status)
            counts[key] = counts.get(key, 0) + n
        return _family(
            "ml_connector_sync_runs",
            "Runs of the sync from Fusion kept in the database, by connection, stream and outcome.",
            counts,
            ["connection", "stream", "outcome"],
        )


def _family(name: str, documentation: str, values: Mapping[Any, float], labels: list[str]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


STAGES = ("delivery", "record")


def metrics_exposition() -> bytes:
    """The text Prometheus scrapes: every process's counters and histograms, and the database's figures."""
    counted = REGISTRY  # one process: its own values (and the process and runtime figures of the client)
    if multiprocess_dir() is not None:
        counted = CollectorRegistry(auto_describe=False)
        counted.register(_FilesCollector(Path(settings.CONNECTOR_METRICS_DIR)))
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    return generate_latest(counted) + generate_latest(database)


class _FilesCollector:
    """The values every process wrote under the metrics directory, summed per label set."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterator[Metric]:
        return iter(MultiProcessCollector.merge(multiprocess_files(self.root), accumulate=True))
