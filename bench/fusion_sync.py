"""The sync from Fusion at scale: the end-to-end test tests/e2e/test_fusion_sync_e2e.py with a large run of
--items items (default 20,000), printing its figures (seconds, peak RSS of each first sync, calls per run).

    .venv/bin/python bench/fusion_sync.py [--items 20000]

It needs what the e2e tests need: PostgreSQL (DATABASE_URL, default the local bench_fusion_sync database; it must
be named bench_*, pytest testing on test_bench_*) and Redis on 127.0.0.1:6379. It exits with the test's status."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="items of the large run (default 20000)")
    options = parser.parse_args()
    env = dict(os.environ)
    env["FUSION_SYNC_E2E_LARGE"] = str(options.items)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_fusion_sync")
    if not env["DATABASE_URL"].rsplit("/", 1)[-1].startswith("bench_"):
        # pytest makes its test database from this name: keep it apart from the suite's and a checkout's.
        raise SystemExit("refusing DATABASE_URL: bench/fusion_sync.py only runs on a database named bench_*")
    test = "tests/e2e/test_fusion_sync_e2e.py"
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-m", "e2e", test]
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - our own interpreter and test


if __name__ == "__main__":
    sys.exit(main())
