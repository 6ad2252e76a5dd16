"""The fault matrix on the Fusion side, end to end with real processes (gunicorn, a Celery worker, beat, PostgreSQL,
Redis, the mock Fusion on loopback), one set of processes for the module: each case gets its own connection and
its own mock Fusion with that case's faults, sends signed webhooks, and ends with zero lost and zero doubled
Fusion documents, each with the Commerce total, and every record posted, linked or parked with a reason.

Fusion down for a while, a 429 storm, tokens that expire and are revoked, workers killed mid-post, duplicate and
out-of-order deliveries, creates whose answer is lost, and a journal import Fusion rejects, then resubmitted."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import AuditEvent
from commerce.models import Delivery
from connector.models import Connection, Record
from fusion.journals import batch_resubmit
from fusion.models import JournalBatch
from mocks.fusion import MockFusion
from mocks.fusion.erp import JOURNAL_NAME
from tests.e2e import faultkit
from tests.e2e.processes import (
    Processes,
    flush_redis,
    free_port,
    process_env,
    processes,
    require_services,
    wait_for,
)
from tests.factories import add_hmac_key
from tests.mockservers import SEED, mock_connection, running
from tests.posting import seed_mappings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]
LEASE_SECONDS = 15  # a killed worker's records are taken over this long after it last renewed


@dataclass
class Stack:
    procs: Processes
    base: str

    @contextmanager
    def case(self, number_base: int, **faults) -> Iterator[tuple[MockFusion, Connection, str]]:
        """A mock Fusion with these faults and a connection to it; the processes' logs are shown on failure."""
        with running(MockFusion(seed=SEED, **faults)) as mock:
            connection = mock_connection(
                mock,
                commerce_base_url="http://127.0.0.1:9",
                retry_base_seconds=1,
                retry_cap_seconds=4,
                retry_max_attempts=40,
                fusion_max_concurrency=8,
                fusion_max_rps=200,
            )
            seed_mappings(connection)
            add_hmac_key(connection, secret=faultkit.SECRET)
            try:
                yield mock, connection, faultkit.webhook_url(self.base, connection)
            except BaseException:
                print(self.procs.logs())
                raise


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory) -> Iterator[Stack]:
    """One web, worker and beat for the module; each case's rows are committed (the processes must see them) and
    emptied after it, as for any transactional test."""
    require_services()
    flush_redis(BROKER_DB, CACHE_DB)
    env = process_env(broker_db=BROKER_DB, cache_db=CACHE_DB)
    env["CONNECTOR_LEASE_SECONDS"] = str(LEASE_SECONDS)
    port = free_port()
    with processes(env, tmp_path_factory.mktemp("faults")) as procs:
        procs.web(port)
        procs.worker(concurrency=4)
        procs.beat()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), timeout=60, procs=procs, what="gunicorn to answer /healthz")
        yield Stack(procs, base)
    flush_redis(BROKER_DB, CACHE_DB)


@pytest.fixture(autouse=True)
def _beat_schedule(allow_local_endpoints, transactional_db) -> None:
    """The relay and the journal shipper every 2 s (the database is emptied after each case; beat sees them come
    back)."""
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="relay", task="connector.relay", interval=every_2s)
    PeriodicTask.objects.create(name="ship journals", task="fusion.ship_journals", interval=every_2s)


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _send_all(url: str, bodies: list[bytes], workers: int = 8) -> list[int | None]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda body: faultkit.deliver(url, body), bodies))


def test_fusion_down_for_a_while_mid_stream_every_order_posts_once_after_it_returns(stack):
    orders, base = 30, 1_000
    with stack.case(base) as (mock, connection, url):
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(10)]) == [200] * 10
        mock.set_faults(outage=20)  # every Fusion call answers 503 with Retry-After for 20 s
        outage_ends = time.monotonic() + 20
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(10, orders)]) == [200] * (orders - 10)
        faultkit.wait_settled(connection, orders, timeout=150, procs=stack.procs)
        assert time.monotonic() >= outage_ends
        faultkit.assert_exactly_once(mock, connection, orders=orders)
        # The outage was met: records were refused and retried across it, not posted around it.
        assert mock.state()["faults_injected"] >= orders - 10, mock.state()
        retried = Record.objects.filter(connection=connection, attempts__gte=1).count()
        assert retried >= orders - 10, f"only {retried} records retried"


def test_a_429_storm_with_retry_after_every_order_posts_once_and_no_retry_comes_early(stack):
    # Longer than a worker may wait inside the client: every 429 goes back to the pipeline, scheduled.
    orders, base, retry_after = 30, 2_000, 12
    with stack.case(base, rate_limit=0.7, retry_after=retry_after) as (mock, connection, url):
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(orders)]) == [200] * orders
        time.sleep(15)  # the storm goes on a while, then Fusion lets the backlog through
        mock.set_faults(rate_limit=0)
        faultkit.wait_settled(connection, orders, timeout=150, procs=stack.procs)
        faultkit.assert_exactly_once(mock, connection, orders=orders)
        throttled = [
            event.data
            for event in AuditEvent.objects.filter(action="record.retry_scheduled", connection=connection)
            if event.data.get("status") == 429
        ]
        assert len(throttled) >= 10, f"the storm did not reach the posting: {len(throttled)} retries after a 429"
        early = [d["delay_seconds"] for d in throttled if d["delay_seconds"] < retry_after]
        assert not early, f"retries scheduled sooner than Fusion's Retry-After of {retry_after} s: {early}"


def test_tokens_that_expire_and_are_revoked_mid_stream_are_refreshed_and_nothing_is_lost(stack):
    orders, base = 30, 3_000
    with stack.case(base, token_lifetime=6) as (mock, connection, url):  # short-lived tokens
        bodies = [faultkit.order_body(base, n) for n in range(orders)]
        assert _send_all(url, bodies[:10]) == [200] * 10
        wait_for(lambda: mock.state()["invoices"] >= 5, timeout=60, procs=stack.procs, what="posting to start")
        mock.advance(3600)  # every token the connector holds has expired, on Fusion's clock, before its own
        assert _send_all(url, bodies[10:20]) == [200] * 10
        wait_for(lambda: mock.state()["invoices"] >= 15, timeout=60, procs=stack.procs, what="posting to go on")
        mock.expire_tokens()  # the identity domain revokes the current token
        assert _send_all(url, bodies[20:]) == [200] * 10
        faultkit.wait_settled(connection, orders, timeout=150, procs=stack.procs)
        faultkit.assert_exactly_once(mock, connection, orders=orders)
        state = mock.state()
        assert state["rejected_tokens"] >= 2, state  # the expired and the revoked token were both refused
        assert state["tokens_issued"] >= 3, state
        # A token serves many calls until it expires or is refused: not one token per call.
        assert state["tokens_issued"] * 4 < state["requests"], state


def test_workers_killed_mid_post_at_random_points_lose_and_double_nothing(stack):
    orders, base = 30, 4_000
    chance = random.Random(SEED)
    with stack.case(base, latency_ms=300) as (mock, connection, url):
        # The ceiling at the worker's own 4 processes: a killed worker's call slots must come back at once
        # (fusion.throttle takes back a slot whose holder process is gone), or the connection would stall until
        # their TTL ran out and this case would time out.
        Connection.objects.filter(pk=connection.pk).update(fusion_max_concurrency=4)
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(orders)]) == [200] * orders
        caught_working = 0
        for kill in range(3):
            time.sleep(chance.uniform(1.0, 4.0))
            caught_working += Record.objects.filter(connection=connection, lease_until__gt=timezone.now()).count()
            stack.procs.kill("worker" if kill == 0 else f"worker-{kill}")
            stack.procs.worker(concurrency=4, name=f"worker-{kill + 1}")
        assert caught_working > 0, "no worker was killed while it held a record"
        faultkit.wait_settled(connection, orders, timeout=180, procs=stack.procs)
        faultkit.assert_exactly_once(mock, connection, orders=orders)


def test_duplicate_deliveries_and_invoices_and_credit_memos_before_their_orders(stack):
    orders, base = 10, 5_000
    with stack.case(base) as (mock, connection, url):
        early = [faultkit.invoice_body(base, n) for n in range(orders)]
        early += [faultkit.credit_memo_body(base, n) for n in range(orders)]
        assert _send_all(url, early) == [200] * len(early)
        time.sleep(3)  # the invoices and credit memos are read and waiting before their orders arrive
        copies = [faultkit.order_body(base, n) for n in range(orders) for _ in range(5)]
        random.Random(SEED).shuffle(copies)
        assert _send_all(url, copies, workers=10) == [200] * len(copies)
        faultkit.wait_settled(connection, 3 * orders, timeout=150, procs=stack.procs)
        # Every copy was answered because it was stored; the copies made one record per document.
        assert Delivery.objects.filter(connection=connection).count() == len(early) + len(copies)
        faultkit.assert_exactly_once(mock, connection, orders=orders, credit_memos=orders, invoices_linked=orders)


def test_creates_committed_then_dropped_at_20_percent_are_adopted_never_doubled(stack):
    orders, base = 30, 6_000
    with stack.case(base, drop_after_commit_rate=0.2) as (mock, connection, url):
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(orders)]) == [200] * orders
        faultkit.wait_settled(connection, orders, timeout=150, procs=stack.procs)
        faultkit.assert_exactly_once(mock, connection, orders=orders)
        assert mock.state()["dropped_after_commit"] >= 3, mock.state()
        adopted = AuditEvent.objects.filter(action="record.document_adopted", connection=connection).count()
        assert adopted == mock.state()["dropped_after_commit"]


def test_a_journal_import_fusion_rejects_is_parked_then_resubmitted_and_booked_once(stack):
    orders, base = 8, 7_000
    with stack.case(base, ess_error=True, ess_running_polls=0) as (mock, connection, url):
        Connection.objects.filter(pk=connection.pk).update(
            journal_mode=Connection.JournalMode.SALES_JOURNAL, journal_batch_minutes=0
        )
        assert _send_all(url, [faultkit.order_body(base, n) for n in range(orders)]) == [200] * orders
        faultkit.wait_settled(connection, orders, timeout=150, procs=stack.procs)
        parked = Record.objects.filter(connection=connection, state=Record.State.NEEDS_REVIEW)
        assert parked.count() == orders, dict(faultkit.states(connection))
        assert all("Journal batch" in r.last_error and "ERROR" in r.last_error for r in parked)
        assert all(r.resolution_hint for r in parked)

        mock.set_faults(ess_error=False)  # the cause is fixed in Fusion; finance resubmits
        failed = list(JournalBatch.objects.filter(connection=connection, state=JournalBatch.State.NEEDS_REVIEW))
        assert failed
        for batch in failed:
            batch_resubmit(batch=batch, actor="user:finance", reason="Period reopened in Fusion")
        wait_for(
            lambda: faultkit.states(connection)[Record.State.POSTED] == orders,
            timeout=120,
            interval=1,
            procs=stack.procs,
            what="the resubmitted journals to be imported",
        )
        faultkit.assert_exactly_once(mock, connection, orders=orders)
        booked: dict[str, int] = {}
        with mock._lock:
            for job in mock.erp_jobs.values():
                if job.last_status == "SUCCEEDED":
                    for name in {row[JOURNAL_NAME] for row in job.rows}:
                        booked[name] = booked.get(name, 0) + 1
            failed_jobs = [j for j in mock.erp_jobs.values() if j.last_status == "ERROR"]
        assert failed_jobs, "no import ended in ERROR"
        numbers = Record.objects.filter(connection=connection).values_list("fusion_transaction_number", flat=True)
        assert sorted(booked) == sorted(f"{n} Order" for n in numbers), booked
        assert set(booked.values()) == {1}, booked
