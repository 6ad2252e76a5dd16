"""Where a posted order's CPU goes, in-process: signed order deliveries stored through the door
(config.wsgi.application), then the worker's two tasks run in this process exactly as Celery runs them (its
Django fixup's task_prerun/task_postrun around each: commerce.delivery_record reads the delivery into a record,
connector.process_record claims, plans, looks up and creates the AR invoice and adds the journal line), against
the mock Fusion and mock Commerce served from threads on loopback, with no latency. No server, no broker
consumer, no client competing for the cores: the figure to compare before and after a change to the posting path.

    .venv/bin/python bench/profile_posting.py [--orders 500] [--profile [--sort tottime]]

Prints per order, best and median of five rounds: the connector's CPU (this process's main thread: door, reader
and poster; the mocks' threads are left out), the PostgreSQL CPU of its backends (from /proc/<pid>/stat of each
backend this process opened, start-up included), the SQL queries, and the PostgreSQL backends opened. With
--profile, a cProfile listing of the reader and poster instead.

Uses the database bench_perf_profile (or $BENCH_DB; migrated and emptied here, bench_* only) and Redis
127.0.0.1:6381 DB 5 for the wake-ups (--broker), drained afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

SECRET = "bench-hmac-secret-0123456789"
SLUG = "bench-posting"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "bench_perf_profile")
TICKS = os.sysconf("SC_CLK_TCK")


def environ_for(order: dict, entity_id: int) -> dict:
    for key in ("order", "data_object"):
        order["data"][key].update(entity_id=str(entity_id), increment_id=f"{entity_id:09d}")
    body = json.dumps(order, separators=(",", ":")).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/commerce/{SLUG}/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_COMMERCE_SIGNATURE": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "HTTP_X_ADOBE_COMMERCE_REQUEST_ID": f"profile-posting-{entity_id}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def set_environment(broker: str) -> None:
    if not DB.startswith("bench_"):
        raise SystemExit(f"refusing database {DB!r}: the benchmarks only run on databases named bench_*")
    import psycopg  # noqa: PLC0415

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"{PG}/{DB}",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        FERNET_KEYS="bench-only-fernet-key",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_COOKIES="0",
        CELERY_BROKER_URL=broker,
        LOG_LEVEL="WARNING",
        CONNECTOR_ALLOW_LOCAL_ENDPOINTS="1",
        CONNECTOR_WEBHOOK_CACHE_SECONDS="5",
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("DB_CONN_MAX_AGE", None)  # the settings' own default, as the Procfile runs them


def prepare(fusion: Any, commerce: Any) -> None:
    """Migrate, empty, one connection on the mocks with the GL mappings the mock chart needs."""
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415

    from connector.models import Connection  # noqa: PLC0415
    from tests.factories import add_hmac_key  # noqa: PLC0415
    from tests.mockservers import mock_connection  # noqa: PLC0415
    from tests.posting import seed_mappings  # noqa: PLC0415

    call_command("migrate", "--noinput", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE commerce_delivery, commerce_deliveryrejection, connector_record, audit_auditevent CASCADE"
        )
    Connection.objects.filter(slug=SLUG).delete()
    conn = mock_connection(fusion, commerce, slug=SLUG, name="Benchmark shop", fusion_max_rps=10000.0)
    seed_mappings(conn)
    add_hmac_key(conn, secret=SECRET)


class Meter:
    """SQL queries, PostgreSQL backends opened and their CPU (read from /proc before each close, and at the end
    of a phase)."""

    def __init__(self) -> None:
        self.queries = 0
        self.statements: list[str] | None = None  # kept while a list
        self.backends = 0
        self.pg_seconds = 0.0
        self._pid: int | None = None
        self._seen = 0.0

    def count(self, execute, sql, params, many, context):  # noqa: ANN001, ANN201  (Django's execute_wrapper)
        self.queries += 1
        if self.statements is not None:
            self.statements.append(sql)
        return execute(sql, params, many, context)

    def opened(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if self.count not in connection.execute_wrappers:  # the wrapper's list outlives the connection
            connection.execute_wrappers.append(self.count)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self._pid = cursor.fetchone()[0]
        self.queries -= 1  # the look-up just made
        self.backends += 1
        self._seen = 0.0  # a new backend: its start-up counts too

    def sample(self, **kwargs: Any) -> None:
        if self._pid is None:
            return
        try:
            fields = Path(f"/proc/{self._pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            self._pid = None
            return
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        self.pg_seconds += seconds - self._seen
        self._seen = seconds


def main() -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing instead")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime, ...)")
    parser.add_argument("--sql", action="store_true", help="print the SQL of one order's worker steps instead")
    parser.add_argument("--broker", default="redis://127.0.0.1:6381/5")
    args = parser.parse_args()

    set_environment(args.broker)
    import django  # noqa: PLC0415

    django.setup()
    import ingest  # noqa: PLC0415  (bench/ingest.py: draining the wake-ups)
    from celery import signals  # noqa: PLC0415
    from celery.fixups.django import DjangoWorkerFixup  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.db.backends.signals import connection_created  # noqa: PLC0415

    from config.celery import app as celery_app  # noqa: PLC0415
    from config.wsgi import application  # noqa: PLC0415
    from connector.models import Record  # noqa: PLC0415
    from mocks.commerce import MockCommerce  # noqa: PLC0415
    from mocks.fusion import MockFusion  # noqa: PLC0415
    from sync import tasks  # noqa: PLC0415
    from tests.mockservers import SEED, running  # noqa: PLC0415

    meter = Meter()
    with running(MockFusion(seed=SEED)) as fusion, running(MockCommerce(seed=SEED)) as commerce:
        prepare(fusion, commerce)
        connection.close()
        connection_created.connect(meter.opened)
        # Sampled before Celery's fixup closes the connection around a task (receivers run in connection order).
        signals.task_prerun.connect(meter.sample)
        signals.task_postrun.connect(meter.sample)
        fixup = DjangoWorkerFixup(celery_app).install()  # kept: the signals hold it weakly
        assert fixup is not None

        answers: list[str] = []

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            answers.append(status)

        def deliver(environ: dict) -> None:
            result = application(environ, start_response)
            b"".join(result)
            result.close()

        def run_task(task: Any, *task_args: Any) -> Any:
            signals.task_prerun.send(sender=task, task_id="profile", task=task, args=task_args, kwargs={})
            retval = task.run(*task_args)
            signals.task_postrun.send(
                sender=task, task_id="profile", task=task, args=task_args, kwargs={}, retval=retval, state="SUCCESS"
            )
            return retval

        def work(delivery_ids: list[int]) -> list[str]:
            """One reader task per delivery (as each web process's wake-up sends one), then one posting task per
            record it made."""
            for delivery_id in delivery_ids:
                run_task(tasks.read_deliveries, [delivery_id])
            records = Record.objects.filter(deliveries__in=delivery_ids).order_by("pk").distinct()
            record_ids = list(records.values_list("pk", flat=True))
            return [run_task(tasks.process_record, record_id) for record_id in record_ids]

        from commerce.models import Delivery  # noqa: PLC0415

        order = json.loads((ROOT / "tests/fixtures/commerce/order_place_after.json").read_text())
        first = 40_000_000

        def stored(count: int, offset: int) -> list[int]:
            environs = [environ_for(order, first + offset + n) for n in range(count)]
            for environ in environs:
                deliver(environ)
            request_ids = [e["HTTP_X_ADOBE_COMMERCE_REQUEST_ID"] for e in environs]
            return list(Delivery.objects.filter(request_id__in=request_ids).order_by("pk").values_list("pk", flat=True))

        outcomes = work(stored(50, 0))  # warm: imports, caches, the Fusion token, prepared statements
        offset = 50
        if args.sql:
            ids = stored(1, offset)
            meter.statements = []
            outcomes += work(ids)
            for n, statement in enumerate(meter.statements, 1):
                print(f"{n:3d} {statement[:220]}")
        elif args.profile:
            ids = stored(args.orders, offset)
            profiler = cProfile.Profile(time.thread_time)
            outcomes += profiler.runcall(work, ids)
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(50)
        else:
            rounds: dict[str, list[float]] = {"door": [], "worker": [], "pg": [], "queries": [], "backends": []}
            size = max(1, args.orders // 5)
            for _ in range(5):
                began = time.thread_time()
                ids = stored(size, offset)
                offset += size
                door = time.thread_time() - began
                meter.sample()
                meter.queries = meter.backends = 0
                meter.pg_seconds = 0.0
                began = time.thread_time()
                outcomes += work(ids)
                worker = time.thread_time() - began
                meter.sample()
                rounds["door"].append(1000 * door / size)
                rounds["worker"].append(1000 * worker / size)
                rounds["pg"].append(1000 * meter.pg_seconds / size)
                rounds["queries"].append(meter.queries / size)
                rounds["backends"].append(meter.backends / size)
            print(f"{size * 5} orders, per order (best / median of 5 rounds of {size}):")
            for name, label in (
                ("door", "door CPU ms (webhook stored)"),
                ("worker", "worker CPU ms (read + post)"),
                ("pg", "PostgreSQL CPU ms (worker's backends)"),
                ("queries", "SQL queries (worker)"),
                ("backends", "PostgreSQL backends opened (worker)"),
            ):
                values = sorted(rounds[name])
                print(f"  {label:40s} {values[0]:8.2f} / {statistics.median(values):8.2f}")
            total = [w + d for w, d in zip(rounds["worker"], rounds["door"], strict=True)]
            print(f"  {'connector CPU ms (door + worker)':40s} {min(total):8.2f} / {statistics.median(total):8.2f}")
    ingest._drain_wakeups(args.broker)
    refused = [status for status in answers if not status.startswith("200")]
    unposted = [o for o in outcomes if o != "done"]
    states = dict(Record.objects.values_list("state").annotate(n=django.db.models.Count("pk")).order_by())
    if refused or unposted:
        print(f"{len(refused)} deliveries refused, {len(unposted)} postings not done: {states}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
