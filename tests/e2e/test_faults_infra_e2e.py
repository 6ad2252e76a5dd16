"""The fault matrix on the connector's own ground, end to end with real processes: the broker and cache (Redis)
stopped while webhooks arrive, and PostgreSQL restarted mid-stream. Each runs against a server of its own, started
for the test on a free port, never the shared ones. A delivery is answered 200 only once it is stored in
PostgreSQL; everything answered 200 becomes exactly one Fusion document."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection as db_connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from commerce.models import Delivery
from connector.models import Connection, Record
from mocks.fusion import MockFusion
from tests.e2e import faultkit
from tests.e2e.privateservers import PrivateCluster, PrivateRedis
from tests.e2e.processes import flush_redis, free_port, process_env, processes, require_services, wait_for
from tests.factories import add_hmac_key
from tests.mockservers import SEED, mock_connection, running
from tests.posting import seed_mappings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]


def _connection(mock: MockFusion) -> Connection:
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
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="relay", task="connector.relay", interval=every_2s)
    return connection


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_redis_stopped_while_webhooks_arrive_deliveries_are_stored_and_woken_once_it_returns(
    allow_local_endpoints, tmp_path
):
    require_services()
    orders, base = 30, 8_000
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with running(MockFusion(seed=SEED)) as mock:
            connection = _connection(mock)
            env = process_env(broker_db=0, cache_db=1)
            env.update(
                TEST_CELERY_BROKER_URL=f"{redis.url}/0",
                REDIS_URL=f"{redis.url}/1",
                CONNECTOR_DELIVERY_GRACE_SECONDS="3",
            )
            port = free_port()
            with processes(env, tmp_path) as procs:
                procs.web(port)
                procs.worker(concurrency=4)
                procs.beat()
                web = f"http://127.0.0.1:{port}"
                wait_for(lambda: _up(web), timeout=60, procs=procs, what="gunicorn to answer /healthz")
                url = faultkit.webhook_url(web, connection)
                bodies = [faultkit.order_body(base, n) for n in range(orders)]
                with ThreadPoolExecutor(max_workers=8) as pool:
                    assert list(pool.map(lambda b: faultkit.deliver(url, b), bodies[:10])) == [200] * 10
                    faultkit.wait_settled(connection, 10, timeout=90, procs=procs)

                    redis.stop()
                    down = list(pool.map(lambda b: faultkit.deliver(url, b), bodies[10:]))
                # Answered 200 only because the delivery is in PostgreSQL: each one is there, byte for byte.
                assert down == [200] * (orders - 10), down
                stored = set(Delivery.objects.filter(connection=connection).values_list("body", flat=True))
                assert all(body in {bytes(s) for s in stored} for body in bodies[10:])
                time.sleep(5)  # with the broker gone nothing carries the wake-ups: they wait in PostgreSQL
                assert Record.objects.filter(connection=connection).count() < orders

                redis.start()  # empty: the wake-ups sent before it stopped are gone too
                faultkit.wait_settled(connection, orders, timeout=150, procs=procs)
        faultkit.assert_exactly_once(mock, connection, orders=orders)
    finally:
        redis.stop()


def _send_through_restart(url: str, bodies: list[bytes], cluster: PrivateCluster) -> list[int | None]:
    """Send the bodies four at a time, one every 1.5 s on each line (10 per line: ~15 s), while PostgreSQL is
    stopped for 6 s in the middle."""
    statuses: list[int | None] = [None] * len(bodies)

    def sender(indexes: range) -> None:
        for i in indexes:
            statuses[i] = faultkit.deliver(url, bodies[i], timeout=20)
            time.sleep(1.5)

    step = len(bodies) // 4
    threads = [threading.Thread(target=sender, args=(range(k * step, (k + 1) * step),)) for k in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    cluster.stop()
    time.sleep(6)
    cluster.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def _record_rows(url: str, connection_id: int) -> list[dict]:
    with closing(psycopg.connect(url, autocommit=True)) as conn:
        cursor = conn.execute(
            f"SELECT {', '.join(faultkit.RECORD_FIELDS)} FROM connector_record WHERE connection_id = %s",  # noqa: S608
            [connection_id],
        )
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _stored_bodies(url: str, connection_id: int) -> set[bytes]:
    with closing(psycopg.connect(url, autocommit=True)) as conn:
        rows = conn.execute("SELECT body FROM commerce_delivery WHERE connection_id = %s", [connection_id])
        return {bytes(row[0]) for row in rows}


def test_postgres_restarted_mid_stream_nothing_answered_200_is_lost(allow_local_endpoints, tmp_path):
    require_services()
    orders, base = 40, 9_000
    cluster = PrivateCluster()
    try:
        cluster.start()
        with running(MockFusion(seed=SEED)) as mock:
            connection = _connection(mock)
            db = db_connection.settings_dict
            cluster.copy_database(
                f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
                "connector",
            )
            private = cluster.url("connector")
            flush_redis(BROKER_DB, CACHE_DB)
            env = process_env(broker_db=BROKER_DB, cache_db=CACHE_DB)
            env.update(DATABASE_URL=private, CONNECTOR_LEASE_SECONDS="15", CONNECTOR_DELIVERY_GRACE_SECONDS="3")
            port = free_port()
            with processes(env, tmp_path) as procs:
                procs.web(port)
                procs.worker(concurrency=4)
                procs.beat()
                web = f"http://127.0.0.1:{port}"
                wait_for(lambda: _up(web), timeout=60, procs=procs, what="gunicorn to answer /healthz")
                url = faultkit.webhook_url(web, connection)
                bodies = [faultkit.order_body(base, n) for n in range(orders)]
                statuses = _send_through_restart(url, bodies, cluster)

                answered = [body for body, status in zip(bodies, statuses, strict=True) if status == 200]
                refused = [body for body, status in zip(bodies, statuses, strict=True) if status != 200]
                stored = _stored_bodies(private, connection.pk)
                lost = [b for b in answered if b not in stored]
                assert not lost, f"{len(lost)} deliveries answered 200 are not stored"
                assert refused, f"no delivery met the restart: {statuses}"
                assert all(s is None or s >= 500 for s in statuses if s != 200), statuses

                # Commerce sends what was not acknowledged again.
                assert [faultkit.deliver(url, body) for body in refused] == [200] * len(refused)

                def settled() -> bool:
                    rows = _record_rows(private, connection.pk)
                    return len(rows) == orders and all(r["state"] in faultkit.DONE_STATES for r in rows)

                try:
                    wait_for(settled, timeout=150, interval=1, procs=procs, what=f"{orders} records to settle")
                except AssertionError:
                    rows = _record_rows(private, connection.pk)
                    raise AssertionError(f"{len(rows)} records: {[(r['state'], r['commerce_number']) for r in rows]}")
        faultkit.check_exactly_once(mock, _record_rows(private, connection.pk), orders=orders)
    finally:
        cluster.remove()
