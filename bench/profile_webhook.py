"""Where a webhook delivery's CPU goes, in-process: signed order deliveries straight into config.wsgi.application
(the production entry point), with no server and no client competing for the cores. The figure moves far less
than bench/ingest.py's, so it is the one to compare before and after a change to the receiver; the targets
are checked by bench/ingest.py only.

    .venv/bin/python bench/profile_webhook.py [--deliveries 5000] [--profile [--sort tottime]]

Uses the benchmark database of bench/ingest.py (bench_ingest: migrated, emptied, one HMAC connection) and
Redis DB 5 for the wake-ups, drained afterwards. Prints the CPU per delivery (process time, all threads,
best and median of five rounds), or with --profile the cProfile listing (slower: the profiler's own cost
falls on the many small calls).
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
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import ingest  # noqa: E402  (bench/ingest.py: the same database, connection and bodies)


def environ_for(order: dict, entity_id: int) -> dict:
    for key in ("order", "data_object"):
        order["data"][key].update(entity_id=str(entity_id), increment_id=f"{entity_id:09d}")
    body = json.dumps(order, separators=(",", ":")).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/commerce/{ingest.SLUG}/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_COMMERCE_SIGNATURE": hmac.new(ingest.SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "HTTP_X_ADOBE_COMMERCE_REQUEST_ID": f"profile-{entity_id}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile listing instead")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime, ...)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()

    env = ingest.django_env(args)
    ingest.prepare_django(env)
    os.environ.update(env)
    from config.wsgi import application  # noqa: PLC0415  (after the environment is set)

    answers: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        answers.append(status)

    def deliver(environ: dict) -> None:
        result = application(environ, start_response)
        b"".join(result)
        result.close()

    order = json.loads((ingest.ROOT / "tests/fixtures/commerce/order_place_after.json").read_text())
    first = 30_000_000
    warm = [environ_for(order, first + n) for n in range(200)]
    measured = [environ_for(order, first + 200 + n) for n in range(args.deliveries)]
    for environ in warm:
        deliver(environ)
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(lambda: [deliver(environ) for environ in measured])
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)
    else:
        rounds = []
        size = max(1, args.deliveries // 5)
        for start in range(0, size * 5, size):
            began = time.process_time()
            for environ in measured[start : start + size]:
                deliver(environ)
            rounds.append(1000 * (time.process_time() - began) / size)
        rounds.sort()
        print(f"{args.deliveries} deliveries: CPU per delivery best {rounds[0]:.3f} ms, median {rounds[2]:.3f} ms")
    refused = [status for status in answers if not status.startswith("200")]
    ingest._drain_wakeups(args.broker)
    if refused:
        print(f"{len(refused)} deliveries were not answered 200, e.g. {refused[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
