"""A per-connection ceiling on calls to Fusion: at most N at once and R per second across every worker
(state in the shared cache), halved while Fusion answers 429 and restored once it stops. When the calls succeed
again after an outage (5xx, no answer), the records waiting to retry are brought forward at the ceiling's pace."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.cache import cache

from connector.models import Connection
from connector.records import records_retry_sooner
from core.errors import TransientError

from . import sources
from .answers import DocumentTax, EssJob, ImportJob, Ledger, ReceivablesDocument
from .client import FusionClient

SLOT_TTL = 600  # seconds; longer than any paced call (reads retry up to 3 x timeout): the last resort for a slot
# whose holder died on another machine (one that died on this machine is taken back at once: _holder_gone)
HOST = socket.gethostname()
BACKOFF_TTL = 120  # seconds the lowered ceiling lasts after the last 429
MAX_WAIT = 10.0  # seconds a call waits for a slot before the record is rescheduled instead
FAILING_TTL = 24 * 3600  # seconds an outage is remembered without a call succeeding
OUTAGE_MIN_SECONDS = 5.0  # failing for less than this (one stray 503) brings nothing forward
CALLS_PER_RECORD = 2  # a posting's calls to Fusion: the look-up of the document, then its creation
MIN_CALL_SECONDS = 0.05  # the shortest call time the pace after an outage assumes
RETRY_SOONER_LIMIT = 20_000  # records brought forward at most when Fusion is back

# Connections whose calls this process saw fail: only then does a success here look for an outage's end.
_failing_seen: set[int] = set()


def _factor_key(connection_id: int) -> str:
    return f"fusion-pace:{connection_id}:factor"


def current_factor(connection_id: int) -> float:
    return float(cache.get(_factor_key(connection_id)) or 1.0)


def note_throttled(connection_id: int) -> float:
    """Fusion answered 429: halve the ceiling (down to a floor) for the next BACKOFF_TTL seconds."""
    factor = max(current_factor(connection_id) / 2, 1 / 16)
    cache.set(_factor_key(connection_id), factor, BACKOFF_TTL)
    return factor


def _failing_key(connection_id: int) -> str:
    return f"fusion-pace:{connection_id}:failing"


def note_failing(connection_id: int) -> None:
    """Fusion failed to answer (5xx, timeout, no connection): remember since when, for every worker."""
    cache.add(_failing_key(connection_id), time.time(), FAILING_TTL)
    _failing_seen.add(connection_id)


def note_answered(connection: Connection, *, call_seconds: float) -> int:
    """A call succeeded. The first success after an outage (one process wins the cache's delete) brings forward
    the connection's records waiting to retry, paced at the ceiling: `concurrency / (call time x calls per
    record)`, at most the rate ceiling's. How many records were brought forward."""
    if connection.pk not in _failing_seen:
        return 0
    _failing_seen.discard(connection.pk)
    key = _failing_key(connection.pk)
    since = cache.get(key)
    if since is None or not cache.delete(key) or time.time() - float(since) < OUTAGE_MIN_SECONDS:
        return 0
    concurrency, rate = limits(connection)
    per_second = min(concurrency / max(call_seconds, MIN_CALL_SECONDS), rate) / CALLS_PER_RECORD
    return records_retry_sooner(
        connection_id=connection.pk, per_second=per_second, limit=RETRY_SOONER_LIMIT, actor="system:fusion-back"
    )


def limits(connection: Connection) -> tuple[int, float]:
    factor = current_factor(connection.pk)
    concurrency = max(1, int(connection.fusion_max_concurrency * factor))
    rate = max(0.2, connection.fusion_max_rps * factor)
    return concurrency, rate


def _take_rate_token(connection: Connection, rate: float, deadline: float) -> None:
    # Fixed one-second windows keyed in the cache: simple, shared by all processes, good enough for pacing.
    while True:
        now = time.time()
        window = int(now)
        key = f"fusion-pace:{connection.pk}:rps:{window}"
        cache.add(key, 0, 5)
        try:
            used = cache.incr(key)
        except ValueError:
            continue
        if used <= max(1, int(rate)) or (rate < 1 and used == 1):
            return
        if now >= deadline:
            raise TransientError("Fusion call ceiling reached for this connection; will retry shortly", retry_after=2)
        time.sleep(max(0.01, window + 1 - now))


def _holder_gone(holder: Any) -> bool:
    """True when a slot's holder was a process of this machine that no longer runs: a worker killed in the
    middle of a call (SIGKILL, the OOM killer) never gives its slot back, and waiting for SLOT_TTL would stall
    the connection's postings for minutes. A holder on another machine, or a process id reused since, is left to
    the TTL."""
    if not isinstance(holder, str):
        return False
    host, _, rest = holder.partition(" ")
    pid_text = rest.partition(" ")[0]
    if host != HOST or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _slot_take(key: str, token: str) -> bool:
    if cache.add(key, token, SLOT_TTL):
        return True
    holder = cache.get(key)
    if _holder_gone(holder) and cache.get(key) == holder:
        cache.delete(key)
        return cache.add(key, token, SLOT_TTL)
    return False


@contextmanager
def fusion_slot(connection: Connection) -> Iterator[None]:
    concurrency, rate = limits(connection)
    deadline = time.time() + MAX_WAIT
    token = f"{HOST} {os.getpid()} {uuid.uuid4().hex}"
    held = None
    while held is None:
        for index in range(concurrency):
            key = f"fusion-pace:{connection.pk}:slot:{index}"
            if _slot_take(key, token):
                held = key
                break
        if held is None:
            if time.time() >= deadline:
                raise TransientError(
                    f"{concurrency} calls to Fusion already running for this connection; will retry shortly",
                    retry_after=5,
                )
            time.sleep(0.05)
    try:
        _take_rate_token(connection, rate, deadline)
        yield
    finally:
        if cache.get(held) == token:
            cache.delete(held)


class PacedClient:
    """A FusionClient whose every call takes a slot and a rate token of the connection's ceiling; a 429 lowers
    the ceiling for every worker. It offers the same calls as the client (FusionApi), each paced."""

    def __init__(self, client: FusionClient, connection: Connection) -> None:
        self._client = client
        self._connection = connection

    def __repr__(self) -> str:
        return f"<PacedClient {self._client!r}>"

    @contextmanager
    def _paced(self) -> Iterator[None]:
        with fusion_slot(self._connection):
            started = time.monotonic()
            try:
                yield
            except TransientError as exc:
                if exc.status == 429:
                    note_throttled(self._connection.pk)
                else:
                    note_failing(self._connection.pk)
                raise
        note_answered(self._connection, call_seconds=time.monotonic() - started)

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        return self._client.exchanges

    def take_exchanges(self) -> list[dict[str, Any]]:
        return self._client.take_exchanges()

    def ensure_token(self, *, fresh: bool = False) -> None:
        self._client.ensure_token(fresh=fresh)

    def get(self, resource: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._paced():
            return self._client.get(resource, params=params)

    def iter_items(self, resource: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        # Paging calls are paced as one: collections are read rarely (reference refresh, look-ups).
        with self._paced():
            yield from self._client.iter_items(resource, **kwargs)

    def find_receivables(
        self, resource: str, *, number: str, source: str, business_unit: str
    ) -> list[ReceivablesDocument]:
        with self._paced():
            return self._client.find_receivables(resource, number=number, source=source, business_unit=business_unit)

    def create_receivables(self, resource: str, payload: dict[str, Any]) -> ReceivablesDocument:
        with self._paced():
            return self._client.create_receivables(resource, payload)

    def receivables_tax(self, resource: str, transaction_id: str) -> DocumentTax:
        with self._paced():
            return self._client.receivables_tax(resource, transaction_id)

    def ledger(self, ledger_id: str) -> Ledger:
        with self._paced():
            return self._client.ledger(ledger_id)

    def import_bulk_data(self, payload: dict[str, Any]) -> ImportJob:
        with self._paced():
            return self._client.import_bulk_data(payload)

    def ess_job_status(self, request_id: str) -> EssJob:
        with self._paced():
            return self._client.ess_job_status(request_id)

    # The sync's long reads take a slot per page (through self.get), never for the whole read.
    def item_changes(
        self, *, organization: str, stamp: str, since: datetime | None, fields: tuple[str, ...] = ()
    ) -> Iterator[sources.FusionItem]:
        return sources.item_changes(self.get, organization=organization, stamp=stamp, since=since, fields=fields)

    def items_numbered(
        self, *, organization: str, item_number: str, stamp: str, fields: tuple[str, ...] = ()
    ) -> list[sources.FusionItem]:
        return sources.items_numbered(
            self.get, organization=organization, item_number=item_number, stamp=stamp, fields=fields
        )

    def customer_sites(
        self, *, fields: tuple[str, ...] = (), account_number: str | None = None
    ) -> Iterator[sources.CustomerSite]:
        return sources.customer_sites(self.get, fields=fields, account_number=account_number)


def paced_client(connection: Connection) -> PacedClient:
    """The connection's Fusion client, paced by its call ceiling: what every flow calls Fusion through."""
    return PacedClient(FusionClient.for_connection(connection), connection)
