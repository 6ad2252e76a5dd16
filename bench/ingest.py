"""Benchmark of the Commerce webhook receiver.

Drives signed, distinct order webhooks at 16 concurrent connections against
  * the connector: gunicorn + config.wsgi + PostgreSQL (database bench_ingest or $BENCH_DB, migrated here): the request
    verifies the delivery and stores it (one row; a worker makes the record later), and
  * the floor: a bare WSGI app (bench/floor.py) doing the same HMAC check and one INSERT (database bench_floor),
under the same gunicorn settings, one after the other, and reports requests/s, p50/p99 latency, rows stored
against 200s answered, and the ratio to the floor. Writes bench/results/ingest-<time>.json and exits 1 when a
target is missed: >= 1000 deliveries/s, p99 <= 25 ms, >= 0.5 of the floor (and, with --reference, >= 0.9 of
the minimal Django + DRF view), zero answered-but-not-stored, and receipt to record p99 <= 1 s.

Then the second figure (unless --no-latency): gunicorn and a real Celery worker (consuming the "posting" queue
on the --broker Redis), deliveries at a fixed --latency-rate (default 200/s) for --latency-seconds (30), and
the time from each 200 to its record's creation (p50/p99/max).

    .venv/bin/python bench/ingest.py [--duration 15] [--workers N] [--worker-class sync|gthread] [--threads T]

Uses wrk (with bench/signed.lua) when installed (`apt-get install -y wrk`), else a Python client (which then
competes for the same two cores and understates both sides). Loopback only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
# The connector's benchmark database (migrated and emptied here): BENCH_DB names another, so two checkouts on one
# machine do not migrate one database to two schemas.
DB = os.environ.get("BENCH_DB", "bench_ingest")
SECRET = "bench-hmac-secret-0123456789"
SLUG = "bench"
CONNECTIONS = 16
TARGETS = {
    "requests_per_s": 1000.0,
    "p99_ms": 25.0,
    "floor_ratio": 0.5,
    "reference_ratio": 0.9,
    "receipt_to_record_p99_s": 1.0,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database(name: str) -> str:
    if not name.startswith("bench_"):
        # Migrated and emptied here: never the tests' database or a working checkout's.
        raise SystemExit(f"refusing database {name!r}: the benchmarks only run on databases named bench_*")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def django_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=ensure_database(DB).replace("postgresql://", "postgres://"),
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        FERNET_KEYS="bench-only-fernet-key",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_COOKIES="0",
        CELERY_BROKER_URL=args.broker,
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        CONNECTOR_WEBHOOK_CACHE_SECONDS="5",
        PYTHONPATH=str(ROOT),
    )
    env.pop("REDIS_URL", None)
    return env


def prepare_django(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = f"""
import django
django.setup()
from django.db import connection
from connector.models import Connection, WebhookKey
with connection.cursor() as c:
    c.execute("TRUNCATE commerce_delivery, commerce_deliveryrejection, connector_record, audit_auditevent CASCADE")
conn, _ = Connection.objects.update_or_create(slug={SLUG!r}, defaults=dict(
    name="Benchmark shop", enabled=True, fusion_base_url="https://bench.fa.us2.oraclecloud.com",
    fusion_token_url="https://idcs-bench.identity.oraclecloud.com/oauth2/v1/token", fusion_client_id="bench",
    commerce_base_url="https://shop.example.com", commerce_consumer_key="bench"))
WebhookKey.objects.filter(connection=conn).delete()
WebhookKey.objects.create(connection=conn, scheme="hmac", secret={SECRET!r}, label="bench",
                          header_name="X-Commerce-Signature", encoding="hex")
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def prepare_floor() -> str:
    dsn = ensure_database("bench_floor")
    with psycopg.connect(dsn, autocommit=True) as conn:
        from floor import SCHEMA  # noqa: PLC0415  (bench/ is on sys.path when run as a script)

        conn.execute(SCHEMA)
        conn.execute("TRUNCATE deliveries")
    return dsn


def stored(kind: str, prefix: str) -> int:
    """Deliveries stored with the run's request ids (the connector's are read by a worker later, if any runs)."""
    if kind == "connector":
        sql = "SELECT count(*) FROM commerce_delivery WHERE request_id LIKE %s"
        dsn = f"{PG}/{DB}"
    else:
        sql = "SELECT count(*) FROM deliveries WHERE request_id LIKE %s"
        dsn = f"{PG}/bench_floor"
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, (prefix + "%",)).fetchone()[0]


def write_bodies(path: Path, *, count: int, prefix: str, first_id: int) -> None:
    order = json.loads((ROOT / "tests/fixtures/commerce/order_place_after.json").read_text())
    with path.open("w") as out:
        for n in range(count):
            entity = first_id + n
            order["data"]["order"].update(entity_id=str(entity), increment_id=f"{entity:09d}")
            order["data"]["data_object"].update(entity_id=str(entity), increment_id=f"{entity:09d}")
            body = json.dumps(order, separators=(",", ":"))
            signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            out.write(f"{signature}\t{prefix}{n}\t{body}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(app: str, env: dict[str, str], args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--log-level",
        "warning",
        "--timeout",
        "30",
    ]
    if args.worker_class == "gthread":
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn for {app} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    time.sleep(1.0)
    _wait_idle(proc.pid)  # every worker has loaded the application (on a busy machine that takes seconds)
    return proc, port


def _wait_idle(master: int, timeout: float = 90.0) -> None:
    """Wait until the children of `master` have booted: their CPU time stops growing."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        used = _cpu_seconds(_children(master))
        if last >= 0 and used - last < 0.02:
            return
        last = used
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drive_wrk(port: int, path: str, bodies: Path, seconds: float) -> dict:
    env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_PATH=path, BENCH_THREADS="2")
    cmd = [
        "wrk",
        "-t2",
        f"-c{CONNECTIONS}",
        f"-d{int(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(BENCH / "signed.lua"),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_RESULT "))
    raw = json.loads(line.split(" ", 1)[1])
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "client": "wrk",
        "answered": raw["requests"],
        "ok_200": raw["requests"] - raw["non_2xx"],
        "non_2xx": raw["non_2xx"],
        "socket_errors": errors,
        "seconds": raw["duration_us"] / 1e6,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }


def drive_python(port: int, path: str, bodies: Path, seconds: float) -> dict:
    lines = bodies.read_text().splitlines()
    latencies: list[float] = []
    counts = {"ok": 0, "other": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        mine: list[float] = []
        ok = other = errors = 0
        for line in share:
            if time.monotonic() >= deadline:
                break
            signature, request_id, body = line.split("\t", 2)
            started = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    path,
                    body=body.encode(),
                    headers={
                        "Content-Type": "application/json",
                        "X-Commerce-Signature": signature,
                        "x-adobe-commerce-request-id": request_id,
                    },
                )
                response = conn.getresponse()
                response.read()
            except OSError:
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                continue
            mine.append(time.perf_counter() - started)
            if response.status == 200:
                ok += 1
            else:
                other += 1
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["other"] += other
            counts["errors"] += errors

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(lines[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return {
        "client": "python-threads",
        "answered": counts["ok"] + counts["other"],
        "ok_200": counts["ok"],
        "non_2xx": counts["other"],
        "socket_errors": counts["errors"],
        "seconds": elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
    }


def _server_pids(master: int, database: str) -> tuple[list[int], list[int]]:
    """The gunicorn workers and the PostgreSQL backends connected to the benchmark database."""
    children = Path(f"/proc/{master}/task/{master}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    with psycopg.connect(f"{PG}/postgres") as conn:
        backends = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
            )
        ]
    return workers, backends


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cpu_seconds(pids: list[int]) -> float:
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


def run_side(
    name: str, app: str, env: dict[str, str], path: str, args: argparse.Namespace, tmp: Path, round_no: int = 0
) -> dict:
    run_id = f"{datetime.now(UTC):%H%M%S}r{round_no}"
    expected = int(args.duration * 4000) + 1000  # more distinct orders than the server can take in the time
    warm, measured = tmp / f"{name}-warm.tsv", tmp / f"{name}.tsv"
    # Every round sends orders no earlier round sent: the connector must see new documents, not duplicates.
    write_bodies(warm, count=3000, prefix=f"warm-{name}-{run_id}-", first_id=10_000_000 + round_no * 10_000)
    write_bodies(measured, count=expected, prefix=f"run-{name}-{run_id}-", first_id=20_000_000 + round_no * 1_000_000)
    drive = drive_wrk if shutil.which("wrk") and not args.python_client else drive_python
    proc, port = start_gunicorn(app, env, args)
    try:
        log(f"{name}: warming up on port {port}")
        drive(port, path, warm, 3)
        log(f"{name}: measuring for {args.duration:.0f} s")
        workers, backends = _server_pids(proc.pid, DB if name == "connector" else "bench_floor")
        web_before, db_before, load_before = _cpu_seconds(workers), _cpu_seconds(backends), os.getloadavg()[0]
        result = drive(port, path, measured, args.duration)
        time.sleep(0.5)  # the last in-flight requests finish their commit
        web, db = _cpu_seconds(workers) - web_before, _cpu_seconds(backends) - db_before
        result["server_cpu_s"] = web + db
        result["web_cpu_ms_per_delivery"] = 1000 * web / max(result["ok_200"], 1)
        result["db_cpu_ms_per_delivery"] = 1000 * db / max(result["ok_200"], 1)
        result["load_average"] = round((load_before + os.getloadavg()[0]) / 2, 2)
    finally:
        stop(proc)
    result["rows_stored"] = stored(name, f"run-{name}-{run_id}-")
    result["requests_per_s"] = result["ok_200"] / result["seconds"]
    # CPU per delivery (web workers + their PostgreSQL backends): what the machine's load cannot move much.
    result["cpu_ms_per_delivery"] = 1000 * result["server_cpu_s"] / max(result["ok_200"], 1)
    result["cpu_bound_ceiling_per_s"] = (os.cpu_count() or 1) * 1000 / max(result["cpu_ms_per_delivery"], 1e-6)
    # Requests still in flight when the client stopped may be stored without their 200 being counted, so
    # rows >= 200s; the invariant is that no 200 was answered for a delivery that is not stored.
    result["answered_but_not_stored"] = max(0, result["ok_200"] - result["rows_stored"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cores = os.cpu_count() or 2
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of measurement per side")
    parser.add_argument("--workers", type=int, default=2 * cores, help="gunicorn workers (default 2 x cores)")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per worker with gthread")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/5", help="Celery broker for the wake-ups")
    parser.add_argument("--python-client", action="store_true", help="use the Python client even if wrk exists")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat, alternating the order of the sides; checks use the medians"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure a minimal Django + DRF view doing the floor's work (bench/minimal_django.py)",
    )
    parser.add_argument("--no-latency", action="store_true", help="skip the receipt-to-record figure")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="deliveries per second for that figure")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="how long deliveries arrive")
    parser.add_argument("--latency-only", action="store_true", help="only the receipt-to-record figure")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="the worker's processes for that figure")
    args = parser.parse_args()

    sys.path.insert(0, str(BENCH))
    env = django_env(args)
    log(f"preparing databases {DB} (migrate) and bench_floor")
    prepare_django(env)
    floor_dsn = prepare_floor()
    floor_env = dict(os.environ, BENCH_FLOOR_DSN=floor_dsn, BENCH_SECRET=SECRET, PYTHONPATH=str(BENCH))

    sides = [("floor", "floor:app", floor_env, "/")]
    if args.reference:
        sides.append(("django-min", "minimal_django", floor_env, "/"))
    sides.append(("connector", "config.wsgi", env, f"/webhooks/commerce/{SLUG}/"))
    rounds = []
    latency = None
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(0 if args.latency_only else args.rounds):
            # Alternate the order, so that a machine getting busier or quieter during the run favours no side.
            order = sides if round_no % 2 == 0 else sides[::-1]
            _drain_wakeups(args.broker)
            results = {name: run_side(name, app, e, p, args, Path(tmp), round_no) for name, app, e, p in order}
            rounds.append(_round(results))
            if args.rounds > 1:
                _print_table(rounds[-1], args, title=f"round {round_no + 1} of {args.rounds}")
        _drain_wakeups(args.broker)
        if not args.no_latency:
            latency = receipt_to_record(env, args, Path(tmp))
            _print_latency(latency, args)
    _drain_wakeups(args.broker)

    checks = {}
    summary = _summary(rounds) if rounds else {}
    if rounds:
        checks.update(
            {
                "requests_per_s >= 1000": summary["requests_per_s"] >= TARGETS["requests_per_s"],
                "p99 <= 25 ms": summary["p99_ms"] <= TARGETS["p99_ms"],
                "ratio to floor >= 0.5": summary["ratio_to_floor"] >= TARGETS["floor_ratio"],
                "zero answered-but-not-stored": summary["answered_but_not_stored"] == 0 and summary["non_2xx"] == 0,
            }
        )
        if summary["to_reference"] is not None:
            checks[">= 0.9 of the minimal Django + DRF view"] = summary["to_reference"] >= TARGETS["reference_ratio"]
    if latency is not None:
        checks["receipt to record p99 <= 1 s"] = (
            latency["records"] == latency["answered"] and latency["p99_s"] <= TARGETS["receipt_to_record_p99_s"]
        )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "setup": {
            "connections": CONNECTIONS,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads if args.worker_class == "gthread" else 1,
            "broker": args.broker.split("@")[-1],
        },
        "rounds": rounds,
        "summary": summary,
        "receipt_to_record": latency,
        "targets": TARGETS,
        "checks": checks,
        "passed": all(checks.values()),
    }
    if len(rounds) == 1:
        _print_table(rounds[0], args)
    elif rounds:
        _print_summary(summary)
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISSED'}] {name}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"ingest-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)}")
    return 0 if report["passed"] else 1


def _drain_wakeups(broker: str) -> None:
    """The connector published wake-ups for the deliveries it stored; nobody consumes them in the rounds."""
    if not broker.startswith("redis://"):
        return
    try:
        import redis

        client = redis.Redis.from_url(broker)
        queues = ("posting", "sync", "journals", "celery")
        # Every queue at every priority step (Redis keeps one list per step: "posting", "posting\x06\x163", ...)
        keys = [f"{q}\x06\x16{step}" if step else q for q in queues for step in (0, 3, 6, 9)]
        client.delete(*keys, "unacked", "unacked_index", "unacked_mutex")
    except Exception as exc:  # a leftover queue is harmless
        log(f"could not drain the benchmark wake-ups: {exc}")


def start_worker(env: dict[str, str], args: argparse.Namespace) -> subprocess.Popen:
    """A real Celery worker on the "posting" queue (delivery reads and record posting), as production runs it."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "posting",
        "--concurrency",
        str(args.celery_concurrency),
        "--loglevel",
        os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    time.sleep(2.0)
    _wait_idle(proc.pid)  # booted, connected to the broker
    if proc.poll() is not None:
        raise SystemExit(f"the Celery worker exited with {proc.returncode}")
    return proc


def drive_at_rate(port: int, path: str, bodies: Path, rate: float, seconds: float) -> dict[str, float]:
    """Open loop: request k is sent at start + k/rate (by one of several connections), whatever the answers
    before it; returns {request id: wall-clock time its 200 arrived}."""
    lines = bodies.read_text().splitlines()[: int(rate * seconds)]
    answered: dict[str, float] = {}
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    lanes = 8

    def lane(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: dict[str, float] = {}
        for k in range(index, len(lines), lanes):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            signature, request_id, body = lines[k].split("\t", 2)
            try:
                conn.request(
                    "POST",
                    path,
                    body=body.encode(),
                    headers={
                        "Content-Type": "application/json",
                        "X-Commerce-Signature": signature,
                        "x-adobe-commerce-request-id": request_id,
                    },
                )
                response = conn.getresponse()
                response.read()
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            if response.status == 200:
                mine[request_id] = time.time()
        with lock:
            answered.update(mine)

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answered


def receipt_to_record(env: dict[str, str], args: argparse.Namespace, tmp: Path) -> dict:
    """The second figure: from the 200 to the record's creation, while --latency-rate deliveries a second
    arrive for --latency-seconds, with a real worker reading them (and posting the records it makes, which
    park at once here: the benchmark connection has no mappings)."""
    count = int(args.latency_rate * args.latency_seconds)
    run_id = f"{datetime.now(UTC):%H%M%S}"
    prefix = f"lat-{run_id}-"
    bodies = tmp / "latency.tsv"
    write_bodies(bodies, count=count, prefix=prefix, first_id=90_000_000)
    warm = tmp / "latency-warm.tsv"
    write_bodies(warm, count=int(args.latency_rate * 3), prefix=f"latwarm-{run_id}-", first_id=89_000_000)
    _drain_wakeups(args.broker)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        # The rounds' deliveries were never read (no worker ran): a reader takes the oldest first, so they go.
        conn.execute("TRUNCATE commerce_delivery, connector_record, audit_auditevent CASCADE")
    worker = start_worker(env, args)
    web, port = start_gunicorn("config.wsgi", env, args)
    try:
        log(
            f"receipt to record: {args.latency_rate:.0f}/s for {args.latency_seconds:.0f} s, "
            f"worker x{args.celery_concurrency}"
        )
        # Warm up (each web process's first wake-up also loads Celery's configuration), then let it drain.
        drive_at_rate(port, f"/webhooks/commerce/{SLUG}/", warm, args.latency_rate, 3)
        time.sleep(3)
        web_pids, db_pids = _server_pids(web.pid, DB)
        worker_pids = _children(worker.pid)
        cpu_before = [_cpu_seconds(p) for p in (web_pids, worker_pids, db_pids)]
        answered = drive_at_rate(port, f"/webhooks/commerce/{SLUG}/", bodies, args.latency_rate, args.latency_seconds)
        deadline = time.monotonic() + 60
        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            while time.monotonic() < deadline:
                unread = conn.execute(
                    "SELECT count(*) FROM commerce_delivery WHERE status = 'received' AND request_id LIKE %s",
                    (prefix + "%",),
                ).fetchone()[0]
                if not unread:
                    break
                time.sleep(0.5)
            db_pids = list({*db_pids, *_server_pids(web.pid, DB)[1]})
            cpu = [
                _cpu_seconds(p) - b for p, b in zip((web_pids, _children(worker.pid), db_pids), cpu_before, strict=True)
            ]
            made = conn.execute(
                "SELECT d.request_id, extract(epoch FROM r.created_at) FROM commerce_delivery d "
                "JOIN connector_record r ON r.id = d.record_id WHERE d.request_id LIKE %s",
                (prefix + "%",),
            ).fetchall()
    finally:
        stop(web)
        stop(worker)
    delays = sorted(float(created) - answered[rid] for rid, created in made if rid in answered)

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, int(len(delays) * p))] if delays else float("inf")

    return {
        "rate_per_s": args.latency_rate,
        "seconds": args.latency_seconds,
        "sent": count,
        "answered": len(answered),
        "records": len(delays),
        "p50_s": pct(0.50),
        "p90_s": pct(0.90),
        "p99_s": pct(0.99),
        "max_s": delays[-1] if delays else float("inf"),
        "min_s": delays[0] if delays else float("inf"),
        "worker_concurrency": args.celery_concurrency,
        # CPU seconds over the run per delivery answered, from the first request until every delivery was read
        # (the worker's include the postings of the records it made, which park at once here)
        "web_cpu_ms_per_delivery": 1000 * cpu[0] / max(len(answered), 1),
        "worker_cpu_ms_per_delivery": 1000 * cpu[1] / max(len(answered), 1),
        "db_cpu_ms_per_delivery": 1000 * cpu[2] / max(len(answered), 1),
    }


def _print_latency(latency: dict, args: argparse.Namespace) -> None:
    print(
        f"\nreceipt to record, {latency['rate_per_s']:.0f} deliveries/s for {latency['seconds']:.0f} s, "
        f"gunicorn {args.workers} x {args.worker_class}, Celery worker x{latency['worker_concurrency']}:"
    )
    print(f"  sent {latency['sent']}, answered 200 {latency['answered']}, records made {latency['records']}")
    print(
        f"  from 200 to record: p50 {latency['p50_s'] * 1000:.0f} ms, p90 {latency['p90_s'] * 1000:.0f} ms, "
        f"p99 {latency['p99_s'] * 1000:.0f} ms, max {latency['max_s'] * 1000:.0f} ms"
    )
    print(
        f"  CPU ms per delivery: web {latency['web_cpu_ms_per_delivery']:.2f}, worker (read + post) "
        f"{latency['worker_cpu_ms_per_delivery']:.2f}, PostgreSQL {latency['db_cpu_ms_per_delivery']:.2f}"
    )


def _round(results: dict[str, dict]) -> dict:
    floor, connector, reference = results["floor"], results["connector"], results.get("django-min")
    per_s = floor["requests_per_s"] or 1e-9
    return {
        "floor": floor,
        "connector": connector,
        "reference_minimal_django": reference,
        "ratio_to_floor": round(connector["requests_per_s"] / per_s, 3),
        "reference_ratio_to_floor": round(reference["requests_per_s"] / per_s, 3) if reference else None,
        "ratio_to_reference": (
            round(connector["requests_per_s"] / (reference["requests_per_s"] or 1e-9), 3) if reference else None
        ),
    }


def _summary(rounds: list[dict]) -> dict:
    """The connector's figures over the rounds: medians, and every delivery answered but not stored counted."""
    ratios = [r["ratio_to_floor"] for r in rounds]
    references = [r["reference_ratio_to_floor"] for r in rounds if r["reference_ratio_to_floor"] is not None]
    to_reference = [r["ratio_to_reference"] for r in rounds if r.get("ratio_to_reference") is not None]
    return {
        "to_reference": statistics.median(to_reference) if to_reference else None,
        "to_reference_by_round": to_reference,
        "requests_per_s": statistics.median(r["connector"]["requests_per_s"] for r in rounds),
        "p99_ms": statistics.median(r["connector"]["p99_ms"] for r in rounds),
        "ratio_to_floor": statistics.median(ratios),
        "ratios_to_floor": ratios,
        "reference_ratio_to_floor": statistics.median(references) if references else None,
        "reference_ratios_to_floor": references,
        "answered_but_not_stored": sum(r["connector"]["answered_but_not_stored"] for r in rounds),
        "non_2xx": sum(r["connector"]["non_2xx"] for r in rounds),
    }


def _print_summary(summary: dict) -> None:
    print(f"\nover {len(summary['ratios_to_floor'])} rounds (medians):")
    print(f"  connector requests/s (200): {summary['requests_per_s']:.0f}, p99 {summary['p99_ms']:.2f} ms")
    ratios = ", ".join(f"{r:.2f}" for r in summary["ratios_to_floor"])
    print(f"  ratio to floor: {summary['ratio_to_floor']:.2f} (rounds: {ratios})")
    if summary["reference_ratio_to_floor"] is not None:
        references = ", ".join(f"{r:.2f}" for r in summary["reference_ratios_to_floor"])
        print(f"  minimal Django+DRF view, ratio to floor: {summary['reference_ratio_to_floor']:.2f} ({references})")
        by_round = ", ".join(f"{r:.2f}" for r in summary["to_reference_by_round"])
        print(f"  connector / minimal Django+DRF view: {summary['to_reference']:.2f} ({by_round})")
    print(f"  answered, not stored: {summary['answered_but_not_stored']}, non-2xx: {summary['non_2xx']}")


def _print_table(report: dict, args: argparse.Namespace, title: str = "") -> None:
    sides = [("floor (bare WSGI)", report["floor"])]
    if report.get("reference_minimal_django"):
        sides.append(("minimal Django+DRF", report["reference_minimal_django"]))
    sides.append(("connector", report["connector"]))
    rows = [("", *(label for label, _ in sides))]
    for key, label, fmt in (
        ("requests_per_s", "requests/s (200)", "{:.0f}"),
        ("p50_ms", "p50 ms", "{:.2f}"),
        ("p90_ms", "p90 ms", "{:.2f}"),
        ("p99_ms", "p99 ms", "{:.2f}"),
        ("max_ms", "max ms", "{:.1f}"),
        ("cpu_ms_per_delivery", "server CPU ms/delivery", "{:.2f}"),
        ("web_cpu_ms_per_delivery", "  of which web workers", "{:.2f}"),
        ("db_cpu_ms_per_delivery", "  of which PostgreSQL", "{:.2f}"),
        ("cpu_bound_ceiling_per_s", "CPU-bound ceiling/s", "{:.0f}"),
        ("load_average", "load average (others)", "{:.1f}"),
        ("ok_200", "200s answered", "{}"),
        ("non_2xx", "non-2xx", "{}"),
        ("socket_errors", "socket errors", "{}"),
        ("rows_stored", "rows stored", "{}"),
        ("answered_but_not_stored", "answered, not stored", "{}"),
    ):
        rows.append((label, *(fmt.format(side[key]) for _, side in sides)))
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(
        f"\nCommerce webhook ingest{', ' + title if title else ''}, {CONNECTIONS} connections, {args.duration:.0f} s, "
        f"gunicorn {args.workers} x {args.worker_class}, client {report['connector']['client']}"
    )
    for r in rows:
        print("  " + f"{r[0]:<{width[0]}}" + "".join(f"  {v:>{w}}" for v, w in zip(r[1:], width[1:], strict=True)))
    print(f"  ratio to floor: {report['ratio_to_floor']:.2f}")
    if report.get("reference_ratio_to_floor") is not None:
        print(f"  minimal Django+DRF view, ratio to floor: {report['reference_ratio_to_floor']:.2f}")
        print(f"  connector / minimal Django+DRF view: {report['ratio_to_reference']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
