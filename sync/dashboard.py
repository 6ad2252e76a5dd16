"""The figures of the admin dashboard, per connection: what needs a person, what waits, what went through, and
when each scheduled job last ran. A fixed number of queries whatever the number of records: each figure is a
filtered aggregate grouped by connection, or a subquery the indexes answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import CharField, Count, Min, OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from audit.models import AuditEvent
from commerce.backfill import checked_key as backfill_checked_key
from commerce.models import Delivery
from connector.models import Connection, Record
from fusion.models import JournalBatch

from .flows.fusion_runs import last_checked_key
from .models import ReconciliationRun, Stream, SyncRun, SyncStream

# Records a worker still has to carry to Fusion (a record whose AR document is posted and whose journal lines
# wait in the open batch is followed by the batch figures, not here).
PENDING_STATES = Record.ACTIVE_STATES
BATCH_OPEN_STATES = (
    JournalBatch.State.OPEN,
    JournalBatch.State.CLOSED,
    JournalBatch.State.SUBMITTING,
    JournalBatch.State.RUNNING,
)
BATCH_FAILED_STATES = (JournalBatch.State.NEEDS_REVIEW,)
BACKFILL_ACTION = "commerce.backfill"


def duration_words(delta: timedelta) -> str:
    """A duration in plain words, to the minute: "less than a minute", "4 min", "2 h 10 min", "3 d 2 h"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "less than a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


@dataclass(frozen=True)
class LastRun:
    """The last run of a scheduled job that did something: when it started, how it ended, in a word and in a
    sentence; and when the job last ended finding nothing to do (`checked_at`, from the cache: such a run writes
    no row). A failure a later check has passed is no longer shown as one."""

    name: str
    started_at: datetime | None
    outcome: str = ""
    ok: bool = True
    detail: str = ""
    checked_at: datetime | None = None

    @classmethod
    def of(cls, name: str, started_at: datetime | None, checked: dict | None, **kwargs) -> LastRun:
        checked_at = checked.get("at") if isinstance(checked, dict) else None
        if checked_at is not None and started_at is not None and checked_at <= started_at:
            checked_at = None  # the run shown is the latest
        if checked_at is not None:
            kwargs["ok"] = True
        return cls(name=name, started_at=started_at, checked_at=checked_at, **kwargs)


@dataclass
class ConnectionDashboard:
    connection: Connection
    needs_review: int = 0
    retrying: int = 0
    oldest_pending_at: datetime | None = None
    posted_today: int = 0
    posted_last_hour: int = 0
    last_webhook_at: datetime | None = None
    batches_open: int = 0
    batches_failed: int = 0
    runs: list[LastRun] = field(default_factory=list)
    reconciliation: ReconciliationRun | None = None
    alarms: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=timezone.now)

    @property
    def oldest_pending_age(self) -> str:
        return duration_words(self.now - self.oldest_pending_at) if self.oldest_pending_at else ""

    @property
    def last_webhook_age(self) -> str:
        return duration_words(self.now - self.last_webhook_at) if self.last_webhook_at else ""

    @property
    def red(self) -> bool:
        return bool(self.alarms)


def dashboard(*, now: datetime | None = None) -> list[ConnectionDashboard]:
    """Every connection's figures, by connection name."""
    now = now or timezone.now()
    connections = list(_connections())
    boards = {c.pk: ConnectionDashboard(connection=c, now=now) for c in connections}
    checked = cache.get_many([backfill_checked_key(c.pk) for c in connections])
    for c in connections:
        board = boards[c.pk]
        board.last_webhook_at = c.last_webhook_at
        board.oldest_pending_at = c.oldest_unread_at
        failed = c.backfill_outcome not in (None, AuditEvent.Outcome.SUCCESS)
        board.runs.append(
            LastRun.of(
                "Commerce backfill",
                c.backfill_at,
                checked.get(backfill_checked_key(c.pk)),
                outcome="" if c.backfill_at is None else ("Failed" if failed else "Done"),
                ok=not failed,
                detail=c.backfill_message or "",
            )
        )
    _add_records(boards, now)
    _add_posted(boards, now)
    _add_batches(boards)
    _add_sync_runs(boards)
    _add_reconciliation(boards)
    for board in boards.values():
        board.alarms = _alarms(board)
    return [boards[c.pk] for c in connections]


def _connections():
    def backfill(column: str):
        return Subquery(
            AuditEvent.objects.filter(
                action=BACKFILL_ACTION,
                target_type=Connection._meta.label_lower,
                target_id=Cast(OuterRef("pk"), CharField()),
            )
            .order_by("-occurred_at", "-id")
            .values(column)[:1]
        )

    return Connection.objects.order_by("name", "pk").annotate(
        # Backwards on the received_at index, stopping at this connection's newest row.
        last_webhook_at=Subquery(
            Delivery.objects.filter(connection=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
        ),
        # Deliveries no worker has made into a record yet: the partial index holds only those.
        oldest_unread_at=Subquery(
            Delivery.objects.filter(connection=OuterRef("pk"), status=Delivery.Status.RECEIVED)
            .order_by("received_at")
            .values("received_at")[:1]
        ),
        backfill_at=backfill("occurred_at"),
        backfill_outcome=backfill("outcome"),
        backfill_message=backfill("message"),
    )


def _add_records(boards: dict[int, ConnectionDashboard], now: datetime) -> None:
    # Only rows in these states are read, through the index that starts with the state (record_due_idx).
    rows = (
        Record.objects.filter(state__in=(Record.State.NEEDS_REVIEW, *PENDING_STATES))
        .values("connection")
        .annotate(
            needs_review=Count("pk", filter=Q(state=Record.State.NEEDS_REVIEW)),
            retrying=Count("pk", filter=Q(state=Record.State.RETRYING)),
            oldest=Min("created_at", filter=Q(state__in=PENDING_STATES)),
        )
        .order_by()
    )
    for row in rows:
        board = boards.get(row["connection"])
        if board is None:
            continue
        board.needs_review, board.retrying = row["needs_review"], row["retrying"]
        if row["oldest"] is not None:
            board.oldest_pending_at = min(filter(None, (board.oldest_pending_at, row["oldest"])))


def _add_posted(boards: dict[int, ConnectionDashboard], now: datetime) -> None:
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    hour_ago = now - timedelta(hours=1)
    rows = (
        Record.objects.filter(posted_at__gte=min(today, hour_ago), posted_at__lte=now)
        .values("connection")
        .annotate(
            today=Count("pk", filter=Q(posted_at__gte=today)),
            last_hour=Count("pk", filter=Q(posted_at__gte=hour_ago)),
        )
        .order_by()
    )
    for row in rows:
        if (board := boards.get(row["connection"])) is not None:
            board.posted_today, board.posted_last_hour = row["today"], row["last_hour"]


def _add_batches(boards: dict[int, ConnectionDashboard]) -> None:
    rows = (
        JournalBatch.objects.filter(state__in=(*BATCH_OPEN_STATES, *BATCH_FAILED_STATES))
        .values("connection")
        .annotate(
            open=Count("pk", filter=Q(state__in=BATCH_OPEN_STATES)),
            failed=Count("pk", filter=Q(state__in=BATCH_FAILED_STATES)),
        )
        .order_by()
    )
    for row in rows:
        if (board := boards.get(row["connection"])) is not None:
            board.batches_open, board.batches_failed = row["open"], row["failed"]


def _add_sync_runs(boards: dict[int, ConnectionDashboard]) -> None:
    """The last run of each Fusion sync stream the connection has."""
    latest = SyncRun.objects.filter(connection=OuterRef("connection"), stream=OuterRef("stream")).order_by(
        "-started_at", "-id"
    )
    streams = list(
        SyncStream.objects.order_by("connection", "stream")
        .annotate(last_run=Subquery(latest.values("pk")[:1]))
        .values("connection", "stream", "last_run")
    )
    runs = SyncRun.objects.in_bulk([s["last_run"] for s in streams if s["last_run"]])
    checked = cache.get_many([last_checked_key(s["connection"], s["stream"]) for s in streams])
    labels = dict(Stream.choices)
    for s in streams:
        board = boards.get(s["connection"])
        if board is None:
            continue
        name = f"Fusion sync: {labels.get(s['stream'], s['stream'])}"
        run = runs.get(s["last_run"])
        last_check = checked.get(last_checked_key(s["connection"], s["stream"]))
        if run is None:
            board.runs.append(LastRun.of(name, None, last_check))
            continue
        board.runs.append(
            LastRun.of(
                name,
                run.started_at,
                last_check,
                outcome=run.get_status_display(),
                ok=run.status != SyncRun.Status.FAILED,
                detail=run.error,
            )
        )


def _add_reconciliation(boards: dict[int, ConnectionDashboard]) -> None:
    """The newest finished reconciliation run of each connection (two queries, whatever the number of runs)."""
    latest = ReconciliationRun.objects.filter(connection=OuterRef("pk"), finished_at__isnull=False).order_by(
        "-finished_at", "-pk"
    )
    pks = Connection.objects.filter(pk__in=boards).annotate(run=Subquery(latest.values("pk")[:1]))
    runs = ReconciliationRun.objects.in_bulk([row["run"] for row in pks.values("run") if row["run"]])
    for run in runs.values():
        boards[run.connection_id].reconciliation = run


def pending_alarm_minutes() -> int:
    return int(settings.CONNECTOR_DASHBOARD_PENDING_ALARM_MINUTES)


def _alarms(board: ConnectionDashboard) -> list[str]:
    alarms = []
    limit = pending_alarm_minutes()
    if board.oldest_pending_at is not None and board.now - board.oldest_pending_at > timedelta(minutes=limit):
        alarms.append(
            f"A document has waited {board.oldest_pending_age} to reach Fusion (more than {limit} min): check "
            "that the worker runs and Fusion answers."
        )
    if board.batches_failed:
        alarms.append(
            f"{board.batches_failed} journal batch(es) failed to import into Fusion: open them to see why and resubmit."
        )
    run = board.reconciliation
    if run is not None and run.status == ReconciliationRun.Status.DIFFERENCES:
        alarms.append(
            f"The last reconciliation ({run.date_from} to {run.date_to}) found {run.difference_count} difference(s) "
            "between Commerce and Fusion: open it to see which documents."
        )
    elif run is not None and run.status == ReconciliationRun.Status.FAILED:
        alarms.append(f"The last reconciliation ({run.date_from} to {run.date_to}) failed: {run.error}")
    return alarms
