"""The connector as it runs, for the benchmarks of bench/scale.py: gunicorn, Celery worker(s) and beat on
PostgreSQL (a bench_* database, migrated and emptied here) and a Redis of their own, against the bundled mock
Fusion and mock Commerce run as processes on loopback.

Every process is started in its own session and stopped (SIGTERM, then SIGKILL) by `Stack.stop_all`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SLUG = "bench-scale"
SECRET = "bench-scale-hmac-secret-0123456789"
# What a connection's Fusion ceiling is raised to for these figures (the defaults are 4 at once and 5/s).
FUSION_CONCURRENCY = 8
FUSION_RPS = 100.0


def guard_database(name: str) -> str:
    """Refuse any database that is not a benchmark's own: it is migrated and emptied."""
    if not re.fullmatch(r"bench_[a-z0-9_]+", name):
        raise SystemExit(f"refusing database {name!r}: the benchmarks only run on databases named bench_*")
    return name


def ensure_database(name: str) -> str:
    guard_database(name)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (Linux /proc); processes that are gone count zero."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Stack:
    def __init__(
        self, database: str, redis_url: str, log_dir: Path, *, fusion_concurrency: int = FUSION_CONCURRENCY
    ) -> None:
        self.fusion_concurrency = fusion_concurrency
        self.fusion_rps = FUSION_RPS
        self.database = guard_database(database)
        self.dsn = ensure_database(database)
        self.redis_url = redis_url.rstrip("/")
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.fusion_port = free_port()
        self.commerce_port = free_port()
        self.web_port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=self.dsn.replace("postgresql://", "postgres://"),
            SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            FERNET_KEYS="bench-only-fernet-key",
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_COOKIES="0",
            CELERY_BROKER_URL=f"{self.redis_url}/0",
            REDIS_URL=f"{self.redis_url}/1",
            CONNECTOR_ALLOW_LOCAL_ENDPOINTS="1",
            CONNECTOR_MOCKS="1",
            LOG_LEVEL="WARNING",
            DB_CONN_MAX_AGE="600",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("TEST_REDIS_DB_BASE", None)

    # -- processes -------------------------------------------------------------------------------------------
    def start(self, name: str, *args: str) -> subprocess.Popen:
        self.stop(name)
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True)  # noqa: S603

    def django(self, script: str) -> str:
        """Run Python with Django set up in a child process; returns what it printed."""
        code = "import django, json\ndjango.setup()\n" + script
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, check=True, capture_output=True)
        return out.stdout.decode()

    def start_mocks(self, *, latency_ms: int) -> None:
        for name, port in (("fusion", self.fusion_port), ("commerce", self.commerce_port)):
            args = ["manage.py", f"mock_{name}", "--port", str(port), "--seed", "20261126"]
            self.start(f"mock-{name}", *args)
        for port in (self.fusion_port, self.commerce_port):
            wait_port(port, self.procs)
        self.fusion_faults(latency_ms=latency_ms)

    def start_web(self, workers: int = 3) -> None:
        self.start(
            "web", "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers)
        )
        wait_port(self.web_port, self.procs)
        wait_idle(self.procs["web"].pid)

    def start_worker(self, concurrency: int, *, queues: str = "posting,sync,journals", pool: str = "prefork") -> None:
        args = ["-m", "celery", "-A", "config", "worker", "-Q", queues, "--concurrency", str(concurrency)]
        args += ["--pool", pool, "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        proc = self.start("worker", *args)
        time.sleep(2.0)
        wait_idle(proc.pid)
        if proc.poll() is not None:
            raise SystemExit(f"the Celery worker exited with {proc.returncode}: see {self.log_dir}/worker.log")

    def start_beat(self) -> None:
        schedule = self.log_dir / "beat-schedule"
        self.start("beat", "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING", "--schedule", str(schedule))

    def worker_pids(self) -> list[int]:
        proc = self.procs.get("worker")
        return [proc.pid, *children(proc.pid)] if proc else []

    def web_pids(self) -> list[int]:
        proc = self.procs.get("web")
        return [proc.pid, *children(proc.pid)] if proc else []

    def db_pids(self) -> list[int]:
        with psycopg.connect(f"{PG}/postgres") as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,)
            ).fetchall()
        return [r[0] for r in rows]

    # -- the mocks' control surface ----------------------------------------------------------------------------
    def fusion_faults(self, **faults: object) -> None:
        _post(f"http://127.0.0.1:{self.fusion_port}/__mock__/faults", faults)

    def mock_state(self, system: str) -> dict:
        port = self.fusion_port if system == "fusion" else self.commerce_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__mock__/state", timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())

    # -- data ----------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Migrate, empty, one connection pointing at the mocks with the GL mappings the mock chart needs."""
        flush_redis(self.redis_url, 0, 1)
        self.manage("migrate", "--noinput", "-v", "0")
        self.sql(
            "TRUNCATE commerce_delivery, commerce_deliveryrejection, connector_record, audit_auditevent, "
            "django_celery_beat_periodictask, django_celery_beat_intervalschedule CASCADE"
        )
        self.django(f"""
from connector.models import Connection
from tests.factories import add_hmac_key, make_connection
from tests.posting import seed_mappings
Connection.objects.filter(slug={SLUG!r}).delete()
conn = make_connection(
    slug={SLUG!r}, name="Benchmark shop", fusion_base_url="http://127.0.0.1:{self.fusion_port}",
    fusion_token_url="http://127.0.0.1:{self.fusion_port}/oauth2/v1/token",
    fusion_client_id="mock-fusion-client", fusion_client_secret="mock-fusion-secret",
    fusion_scope="urn:opc:resource:consumer::all",
    commerce_base_url="http://127.0.0.1:{self.commerce_port}", commerce_consumer_key="mock-consumer-key",
    commerce_consumer_secret="mock-consumer-secret", commerce_access_token="mock-access-token",
    commerce_access_token_secret="mock-access-token-secret",
    fusion_max_concurrency={self.fusion_concurrency}, fusion_max_rps={self.fusion_rps})
seed_mappings(conn)
add_hmac_key(conn, secret={SECRET!r})
""")
        self.manage("ensure_schedules")
        # The sync from Fusion needs the item organisation (the mock's is M1), as in tests/e2e/test_fusion_sync_e2e.py.
        self.sql(
            "UPDATE sync_fusionsyncsettings SET item_organization = 'M1' WHERE connection_id = "
            "(SELECT id FROM connector_connection WHERE slug = %s)",
            (SLUG,),
        )

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def flush_redis(url: str, *dbs: int) -> None:
    import redis  # noqa: PLC0415 - only the benchmarks need the client here

    for db in dbs:
        redis.Redis.from_url(f"{url}/{db}").flushdb()


def wait_port(port: int, procs: dict[str, subprocess.Popen], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port} within {timeout:.0f} s")


def wait_idle(master: int, timeout: float = 90.0) -> None:
    """Wait until a process and its children have booted: their CPU time stops growing."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        used = cpu_seconds([master, *children(master)])
        if last >= 0 and used - last < 0.02:
            return
        last = used
        time.sleep(0.5)
