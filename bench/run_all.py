"""`make bench`: every benchmark of the connector, with the published parameters, a table of each figure against
its target, and the whole as JSON under bench/results/all-<UTC time>.json. Exits 1 when a target is missed.

    .venv/bin/python bench/run_all.py            # the published run (about 20 minutes on a quiet machine)
    .venv/bin/python bench/run_all.py --quick    # short runs of everything, to check the scripts
    .venv/bin/python bench/run_all.py --only latency,workers --worker-concurrency 8

Real processes: gunicorn (3 workers, the Procfile's default), a Celery worker configured as the Procfile's worker
line (or --worker-concurrency/--worker-pool), beat where the figure needs it, PostgreSQL (database bench_scale or
$BENCH_SCALE_DB; it must be named bench_*) and Redis ($BENCH_REDIS, default redis://127.0.0.1:6387: databases 0 and
1 are flushed), against the mock Fusion and mock Commerce as processes on loopback, the mock Fusion answering
every call after --fusion-latency-ms (150). See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402 - bench/ on the path first
from stack import ROOT, Stack  # noqa: E402

PHASES = ("idle", "latency", "workers", "drain", "ingest")
TARGETS = {
    "latency_p50_s": 1.0,
    "latency_p99_s": 3.0,
    "cpu_ms_per_order": 10.0,
    "drain_ratio_to_ceiling": 0.8,
    "idle_rows_written": 0,
}


def procfile_worker() -> tuple[int, str]:
    """The worker concurrency and pool the Procfile starts by default."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("worker:"))
    concurrency = re.search(r"--concurrency \$\{WORKER_CONCURRENCY:-(\d+)\}", line)
    pool = re.search(r"--pool \$\{WORKER_POOL:-(\w+)\}|--pool (\w+)", line)
    return int(concurrency.group(1)) if concurrency else 2, next(
        (g for g in pool.groups() if g), "prefork"
    ) if pool else "prefork"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    concurrency, pool = procfile_worker()
    parser.add_argument("--quick", action="store_true", help="short runs of everything (not for the published figures)")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    parser.add_argument("--fusion-latency-ms", type=int, default=150)
    parser.add_argument(
        "--fusion-concurrency", type=int, default=8, help="the benchmark connection's fusion_max_concurrency"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second of the latency figure")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long orders arrive for the latency figure")
    parser.add_argument("--worker-concurrency", type=int, default=concurrency, help="default: the Procfile's")
    parser.add_argument("--worker-pool", default=pool, help="default: the Procfile's")
    parser.add_argument("--worker-counts", default="1,2,4", help="processes for the throughput figure")
    parser.add_argument("--backlog", type=int, default=600, help="orders of each throughput run")
    parser.add_argument("--drain-orders", type=int, default=5000)
    parser.add_argument("--ingest-args", default="", help="passed on to bench/ingest.py (e.g. '--rounds 1')")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.backlog, args.drain_orders = 15.0, 120, 400
        args.ingest_args = args.ingest_args or "--duration 5 --latency-seconds 10"
    args.phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown --only {', '.join(sorted(unknown))}")
    return args


def run_ingest(args: argparse.Namespace) -> dict:
    """bench/ingest.py with its defaults, on its own bench database and this benchmark's Redis."""
    redis = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6387").rstrip("/")
    env = dict(os.environ, BENCH_DB=os.environ.get("BENCH_INGEST_DB", "bench_ingest"))
    command = [sys.executable, "bench/ingest.py", "--broker", f"{redis}/2", *args.ingest_args.split()]
    before = set((ROOT / "bench/results").glob("ingest-*.json"))
    rc = subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - our own interpreter and script
    written = sorted(set((ROOT / "bench/results").glob("ingest-*.json")) - before)
    report = json.loads(written[-1].read_text()) if written else {}
    return {
        "exit_code": rc,
        "checks": report.get("checks", {}),
        "summary": report.get("summary", {}),
        "receipt_to_record": report.get("receipt_to_record"),
        "file": str(written[-1].name) if written else None,
    }


def measure(args: argparse.Namespace, stack: Stack, tmp: Path) -> dict:
    results: dict = {}
    stack.prepare()
    stack.start_mocks(latency_ms=args.fusion_latency_ms)
    stack.start_web(3)
    if "idle" in args.phases:
        results["idle"] = scale.idle_cycle(stack)
    # The figures below are about posting: only the relay stays scheduled (it wakes records due for a retry).
    stack.sql("UPDATE django_celery_beat_periodictask SET enabled = (task = 'connector.relay')")
    stack.sql("UPDATE django_celery_beat_periodictasks SET last_update = now()")
    if "latency" in args.phases:
        stack.start_worker(args.worker_concurrency, pool=args.worker_pool)
        results["latency"] = scale.latency(
            stack, tmp, rate=args.rate, seconds=args.seconds, latency_ms=args.fusion_latency_ms
        )
    if "workers" in args.phases:
        counts = [int(n) for n in args.worker_counts.split(",")]
        results["workers"] = [scale.throughput(stack, tmp, workers=n, orders=args.backlog) for n in counts]
    if "drain" in args.phases:
        stack.start_worker(args.worker_concurrency, pool=args.worker_pool)
        stack.start_beat()
        results["drain"] = scale.drain(
            stack,
            tmp,
            orders=args.drain_orders,
            latency_ms=args.fusion_latency_ms,
            timeout=max(600.0, args.drain_orders * 0.5),
        )
    return results


def checks(results: dict) -> list[tuple[str, str, str, bool]]:
    """(figure, value, target, met) for the table."""
    rows = []
    if lat := results.get("latency"):
        complete = lat["posted"] == lat["sent"]
        rows.append(
            (
                f"webhook -> AR invoice p50 ({lat['rate_per_s']:.0f}/s, Fusion {lat['fusion_latency_ms']} ms)",
                f"{lat['p50_s']:.2f} s",
                "<= 1 s",
                complete and lat["p50_s"] <= TARGETS["latency_p50_s"],
            )
        )
        rows.append(
            (
                "webhook -> AR invoice p99",
                f"{lat['p99_s']:.2f} s",
                "<= 3 s",
                complete and lat["p99_s"] <= TARGETS["latency_p99_s"],
            )
        )
        rows.append(("orders posted of those sent", f"{lat['posted']} / {lat['sent']}", "all", complete))
        parts = ", ".join(f"{k} {v:.1f}" for k, v in lat["cpu_ms_per_order"].items())
        rows.append(
            (
                f"CPU per posted order ({parts})",
                f"{lat['cpu_ms_per_order_total']:.1f} ms",
                "<= 10 ms",
                lat["cpu_ms_per_order_total"] <= TARGETS["cpu_ms_per_order"],
            )
        )
    for run in results.get("workers", []):
        rows.append(
            (
                f"throughput, worker x{run['workers']} ({run['pool']})",
                f"{run['orders_per_s']:.1f} orders/s",
                "scales to the ceiling",
                run["posted"] == run["orders"],
            )
        )
    if dr := results.get("drain"):
        rows.append(
            (
                f"backlog drain, {dr['orders']} orders after an outage",
                f"{dr['drain_s']:.0f} s",
                f"ceiling {dr['ceiling_per_s']:.1f}/s",
                dr["posted"] == dr["orders"],
            )
        )
        rows.append(
            (
                "drain rate / ceiling",
                f"{dr['rate_per_s']:.1f}/s = {dr['ratio_to_ceiling']:.2f}",
                ">= 0.8",
                dr["posted"] == dr["orders"] and dr["ratio_to_ceiling"] >= TARGETS["drain_ratio_to_ceiling"],
            )
        )
    if idle := results.get("idle"):
        streams, others = idle["streams"], idle["others"]
        rows.append(
            (
                f"idle cycle, sync from Fusion: Fusion requests ({idle['fusion_streams']} streams)",
                str(streams["fusion_requests"]),
                f"<= {idle['fusion_streams']}",
                streams["fusion_requests"] <= idle["fusion_streams"],
            )
        )
        rows.append(
            (
                "idle cycle, sync from Fusion: Commerce requests",
                str(streams["commerce_requests"]),
                "0",
                streams["commerce_requests"] == 0,
            )
        )
        rows.append(
            (
                "idle cycle, sync from Fusion: rows written",
                str(streams["rows_written"]),
                "0",
                streams["rows_written"] == 0,
            )
        )
        rows.append(
            (
                f"idle cycle, the {idle['other_periodic_tasks']} other periodic tasks: Fusion / Commerce requests",
                f"{others['fusion_requests']} / {others['commerce_requests']}",
                "reported",
                True,
            )
        )
        rows.append(
            (
                "idle cycle, the other periodic tasks: rows written",
                str(others["rows_written"]),
                "0",
                others["rows_written"] == 0,
            )
        )
    if ing := results.get("ingest"):
        for name, ok in ing["checks"].items():
            rows.append((f"ingest: {name}", _ingest_value(name, ing), "bench/ingest.py", ok))
        if not ing["checks"]:
            rows.append(("ingest", f"exit {ing['exit_code']}", "exit 0", ing["exit_code"] == 0))
    return rows


def _ingest_value(check: str, ingest: dict) -> str:
    """The figure bench/ingest.py checked, from its summary."""
    summary, latency = ingest.get("summary") or {}, ingest.get("receipt_to_record") or {}
    values = {
        "requests_per_s": ("requests_per_s", "{:.0f}/s"),
        "p99 <=": ("p99_ms", "{:.1f} ms"),
        "ratio to floor": ("ratio_to_floor", "{:.2f}"),
        "minimal Django": ("to_reference", "{:.2f}"),
        "answered-but-not-stored": ("answered_but_not_stored", "{}"),
    }
    if check.startswith("receipt to record") and latency:
        return f"{latency['p99_s'] * 1000:.0f} ms"
    for prefix, (key, fmt) in values.items():
        if prefix in check and summary.get(key) is not None:
            return fmt.format(summary[key])
    return "see its table"


def print_table(rows: list[tuple[str, str, str, bool]], load: tuple[float, float]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(
        f"\nml-connector benchmarks (load average {load[0]:.1f} at start, {load[1]:.1f} at the end, "
        f"{os.cpu_count()} cores)"
    )
    for figure, value, target, ok in rows:
        print(f"  {figure:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {'ok' if ok else 'MISSED'}")


def _terminated(*_: object) -> None:
    """Stopped (timeout, kill): unwind, so that the stack's processes are stopped; a second signal (timeout passes
    its own on) must not interrupt that."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def main() -> int:
    args = parse()
    # Stopped (timeout, kill): leave no process of the stack behind.
    signal.signal(signal.SIGTERM, _terminated)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        stack = Stack(
            os.environ.get("BENCH_SCALE_DB", "bench_scale"),
            os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6387"),
            Path(tmp),
            fusion_concurrency=args.fusion_concurrency,
        )
        try:
            results = measure(args, stack, Path(tmp)) if set(args.phases) - {"ingest"} else {}
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            stack.stop_all()
    if "ingest" in args.phases:
        results["ingest"] = run_ingest(args)
    rows = checks(results)
    load = (load_start, os.getloadavg()[0])
    print_table(rows, load)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_average": load},
        "parameters": {k: v for k, v in vars(args).items() if k != "phases"},
        "results": results,
        "checks": [{"figure": f, "value": v, "target": t, "ok": ok} for f, v, t, ok in rows],
        "passed": all(r[3] for r in rows),
    }
    out = ROOT / "bench/results" / f"all-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
