"""The connector at scale, measured with real processes (bench/stack.py) against the mock Fusion with a stated
latency on every call: webhook to AR invoice latency at a steady rate, CPU per posted order, draining a backlog
left by a Fusion outage, throughput by worker processes, and the idle cost of a beat cycle. bench/run_all.py
runs them and checks the targets; each function here returns its figures as a dict."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from ingest import drive_at_rate
from stack import PG, ROOT, SECRET, SLUG, Stack, cpu_seconds, rss_mb, wait_idle

FIXTURE = ROOT / "tests/fixtures/commerce/order_place_after.json"
WEBHOOK = f"/webhooks/commerce/{SLUG}/"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def write_orders(path: Path, *, count: int, prefix: str, first_id: int) -> None:
    """Signed order webhooks, one distinct order each, in bench/ingest.py's file format."""
    payload = json.loads(FIXTURE.read_text())
    template = payload["data"]["order"]
    with path.open("w") as out:
        for n in range(count):
            order = copy.deepcopy(template)
            order["entity_id"] = str(first_id + n)
            order["increment_id"] = f"{first_id + n:09d}"
            for item in order["items"]:
                item["order_id"] = order["entity_id"]
            body = json.dumps({**payload, "data": {"order": order}}, separators=(",", ":"))
            signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            out.write(f"{signature}\t{prefix}{n}\t{body}\n")


def send(stack: Stack, tmp: Path, *, count: int, rate: float, tag: str, first_id: int) -> tuple[str, dict]:
    prefix = f"{tag}-{datetime.now(UTC):%H%M%S}-"
    bodies = tmp / f"{tag}.tsv"
    write_orders(bodies, count=count, prefix=prefix, first_id=first_id)
    answered = drive_at_rate(stack.web_port, WEBHOOK, bodies, rate, count / rate)
    return prefix, answered


def posted_times(stack: Stack, prefix: str) -> dict[str, float]:
    rows = stack.sql(
        "SELECT d.request_id, extract(epoch FROM r.posted_at) FROM commerce_delivery d "
        "JOIN connector_record r ON r.id = d.record_id WHERE d.request_id LIKE %s AND r.posted_at IS NOT NULL",
        (prefix + "%",),
    )
    return {rid: float(at) for rid, at in rows}


def wait_posted(stack: Stack, prefix: str, expected: int, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    posted = posted_times(stack, prefix)
    while len(posted) < expected and time.monotonic() < deadline:
        for name, proc in stack.procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}: see {stack.log_dir}/{name}.log")
        time.sleep(1.0)
        posted = posted_times(stack, prefix)
    return posted


def record_states(stack: Stack, prefix: str) -> dict[str, int]:
    rows = stack.sql(
        "SELECT coalesce(r.state, 'unread'), count(*) FROM commerce_delivery d LEFT JOIN connector_record r "
        "ON r.id = d.record_id WHERE d.request_id LIKE %s GROUP BY 1",
        (prefix + "%",),
    )
    return dict(rows)


def fusion_api_calls(stack: Stack) -> int:
    """Requests the mock Fusion answered, its token endpoint included (its control surface is not counted)."""
    return stack.mock_state("fusion")["requests"]


class BackendCpu:
    """The CPU of the PostgreSQL backends serving the benchmark database over an interval, including backends
    that connect and disconnect within it: sampled every 0.5 s, each backend counted from its first sample
    (from zero if it connected after the start) to its last."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.first: dict[int, float] = {pid: cpu_seconds([pid]) for pid in stack.db_pids()}
        self.last: dict[int, float] = dict(self.first)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.wait(0.5):
            for pid in self.stack.db_pids():
                used = cpu_seconds([pid])
                self.first.setdefault(pid, 0.0)
                self.last[pid] = max(used, self.last.get(pid, 0.0))

    def stop(self) -> tuple[float, int]:
        """CPU seconds used, and how many backends served the database."""
        self.stopped.set()
        self.thread.join()
        return sum(self.last[pid] - self.first[pid] for pid in self.last), len(self.last)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("inf")


def latency(stack: Stack, tmp: Path, *, rate: float, seconds: float, latency_ms: int) -> dict:
    """Orders at a steady `rate` for `seconds` (open loop); each one's time from its webhook's 200 to its record's
    posted_at, and the CPU the web, worker and PostgreSQL processes spent per posted order."""
    count = int(rate * seconds)
    warm_prefix, warm = send(stack, tmp, count=int(rate * 2), rate=rate, tag="warm", first_id=30_000_000)
    wait_posted(stack, warm_prefix, len(warm), 120)
    time.sleep(2)
    pids = {"web": stack.web_pids(), "worker": stack.worker_pids()}
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    backends = BackendCpu(stack)
    calls_before = fusion_api_calls(stack)
    load_before = os.getloadavg()[0]
    log(f"latency: {rate:.0f} orders/s for {seconds:.0f} s, mock Fusion latency {latency_ms} ms")
    prefix, answered = send(stack, tmp, count=count, rate=rate, tag="lat", first_id=31_000_000)
    posted = wait_posted(stack, prefix, len(answered), timeout=max(120.0, seconds * 4))
    cpu = {name: cpu_seconds(p) - before[name] for name, p in pids.items()}
    cpu["postgresql"], backends_seen = backends.stop()
    calls = fusion_api_calls(stack) - calls_before
    delays = sorted(posted[rid] - at for rid, at in answered.items() if rid in posted)
    done = max(len(posted), 1)
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "fusion_latency_ms": latency_ms,
        "sent": count,
        "answered": len(answered),
        "posted": len(posted),
        "states": record_states(stack, prefix),
        "p50_s": pct(delays, 0.50),
        "p90_s": pct(delays, 0.90),
        "p99_s": pct(delays, 0.99),
        "max_s": delays[-1] if delays else float("inf"),
        "cpu_ms_per_order": {name: 1000 * used / done for name, used in cpu.items()},
        "cpu_ms_per_order_total": 1000 * sum(cpu.values()) / done,
        "fusion_calls_per_order": calls / done,
        "worker_rss_mb": rss_mb(stack.worker_pids()),
        "worker_processes": len(stack.worker_pids()) - 1,
        "postgresql_connections": len(stack.db_pids()),
        "postgresql_backends_seen": backends_seen,
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
    }


def throughput(stack: Stack, tmp: Path, *, workers: int, orders: int, pool: str = "prefork") -> dict:
    """A backlog of `orders` received with no worker running, then a worker with `workers` processes: its
    posting rate between the 10th and the 90th percentile of the posted times (start-up and tail left out)."""
    stack.stop("worker")
    prefix, answered = send(
        stack, tmp, count=orders, rate=100.0, tag=f"tp{workers}", first_id=40_000_000 + workers * 100_000
    )
    calls_before = fusion_api_calls(stack)
    load_before = os.getloadavg()[0]
    log(f"throughput: backlog of {len(answered)} orders, worker x{workers} ({pool})")
    stack.start_worker(workers, pool=pool)
    posted = wait_posted(stack, prefix, len(answered), timeout=max(180.0, orders * 1.0))
    times = sorted(posted.values())
    first, last = pct(times, 0.10), pct(times, 0.90)
    rate = 0.8 * len(times) / (last - first) if len(times) > 10 and last > first else 0.0
    return {
        "workers": workers,
        "pool": pool,
        "orders": len(answered),
        "posted": len(posted),
        "orders_per_s": rate,
        "fusion_calls_per_order": (fusion_api_calls(stack) - calls_before) / max(len(posted), 1),
        "worker_rss_mb": rss_mb(stack.worker_pids()),
        "postgresql_connections": len(stack.db_pids()),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
    }


def drain(stack: Stack, tmp: Path, *, orders: int, latency_ms: int, timeout: float) -> dict:
    """`orders` received while every Fusion call answers 500/503 (the worker and beat's relay running, as in
    production: the records made fail their attempts and wait for their retry), then Fusion back once every
    delivery is read: the time until the last one is posted, and the rate achieved against the
    ceiling the connection's Fusion concurrency allows at this latency."""
    stack.fusion_faults(error_rate=1.0, retry_after=1)
    prefix, answered = send(stack, tmp, count=orders, rate=100.0, tag="drain", first_id=50_000_000)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # every delivery read into its record; the postings fail meanwhile
        if not record_states(stack, prefix).get("unread"):
            break
        time.sleep(2)
    log(f"drain: {len(answered)} orders waiting ({record_states(stack, prefix)}); Fusion back")
    calls_before = fusion_api_calls(stack)
    load_before = os.getloadavg()[0]
    back = time.time()
    stack.fusion_faults(error_rate=0.0)
    posted = wait_posted(stack, prefix, len(answered), timeout=timeout)
    times = sorted(posted.values())
    calls_per_order = (fusion_api_calls(stack) - calls_before) / max(len(posted), 1)
    ceiling = min(stack.fusion_concurrency / (latency_ms / 1000 * calls_per_order), stack.fusion_rps / calls_per_order)
    drain_s = (times[-1] - back) if times else float("inf")
    active_s = (times[-1] - times[0]) if len(times) > 1 else float("inf")
    return {
        "orders": len(answered),
        "posted": len(posted),
        "states": record_states(stack, prefix),
        "drain_s": drain_s,
        "rate_per_s": len(posted) / drain_s if drain_s else 0.0,
        "rate_first_to_last_per_s": len(posted) / active_s if active_s else 0.0,
        "fusion_calls_per_order": calls_per_order,
        "ceiling_per_s": ceiling,
        "ratio_to_ceiling": (len(posted) / drain_s) / ceiling if drain_s and ceiling else 0.0,
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
    }


def _table_writes(stack: Stack) -> dict[str, int]:
    with psycopg.connect(f"{PG}/{stack.database}") as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables").fetchall()
    return {name: int(n) for name, n in rows}


STREAM_TASK = "sync.fusion_sync"


def _beat_cycle(stack: Stack, *, streams: bool) -> int:
    """Send the enabled periodic tasks once (the sync from Fusion's streams, or all the others), as beat does when
    each falls due; wait until the worker is idle."""
    chosen = "filter" if streams else "exclude"
    sent = stack.django(f"""
from django_celery_beat.models import PeriodicTask
from config.celery import app
tasks = PeriodicTask.objects.filter(enabled=True).exclude(task="celery.backend_cleanup").{chosen}(task={STREAM_TASK!r})
for t in tasks:
    app.send_task(t.task, args=json.loads(t.args or "[]"), kwargs=json.loads(t.kwargs or "{{}}"), queue=t.queue or None)
print(len(tasks))
""")
    time.sleep(3)
    wait_idle(stack.procs["worker"].pid, timeout=300)
    return int(sent.strip().splitlines()[-1])


def _snapshot(stack: Stack) -> tuple[dict, dict, dict[str, int]]:
    stack.stop("worker")  # a backend's statistics reach pg_stat when it ends
    time.sleep(1.5)
    return stack.mock_state("fusion"), stack.mock_state("commerce"), _table_writes(stack)


def _cost(before: tuple[dict, dict, dict[str, int]], after: tuple[dict, dict, dict[str, int]]) -> dict:
    def delta(new: dict, old: dict) -> dict[str, int]:
        return {k: n - old.get(k, 0) for k, n in new.items() if n - old.get(k, 0)}

    fusion = delta(after[0]["requests_by_path"], before[0]["requests_by_path"])
    commerce = delta(after[1]["requests_by_path"], before[1]["requests_by_path"])
    writes = delta(after[2], before[2])
    return {
        "fusion_requests": sum(fusion.values()),
        "fusion_requests_by_path": fusion,
        "commerce_requests": sum(commerce.values()),
        "commerce_requests_by_path": commerce,
        "rows_written": sum(writes.values()),
        "rows_written_by_table": writes,
    }


def idle_cycle(stack: Stack) -> dict:
    """With nothing changed in either system since the last cycle: the requests a beat cycle makes to the mock
    Fusion and Commerce, and the rows it writes, for the sync from Fusion's streams and for the other periodic
    tasks apart. A first cycle catches up; the second is measured."""
    stack.start_worker(2)
    _beat_cycle(stack, streams=True)
    _beat_cycle(stack, streams=False)
    caught_up = _snapshot(stack)
    stack.start_worker(2)
    streams = _beat_cycle(stack, streams=True)
    after_streams = _snapshot(stack)
    stack.start_worker(2)
    others = _beat_cycle(stack, streams=False)
    after_others = _snapshot(stack)
    return {
        "fusion_streams": streams,
        "streams": _cost(caught_up, after_streams),
        "other_periodic_tasks": others,
        "others": _cost(after_streams, after_others),
    }


def median_of(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
