"""The benchmarks migrate and empty their database: each refuses one that is not named bench_*, before it
connects anywhere (PostgreSQL is pointed at a closed port here, so a script that did connect would fail
differently)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLOSED = "postgresql://postgres@127.0.0.1:9"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "BENCH_PG": CLOSED, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("script", "env"),
    [
        (("bench/ingest.py", "--no-latency"), {"BENCH_DB": "ml_connector"}),
        (("bench/profile_webhook.py", "--deliveries", "1"), {"BENCH_DB": "test_ml_connector"}),
        (("bench/run_all.py", "--only", "latency"), {"BENCH_SCALE_DB": "ml_connector"}),
        (("bench/fusion_sync.py",), {"DATABASE_URL": "postgres://postgres@127.0.0.1:9/ml_connector"}),
    ],
)
def test_a_benchmark_refuses_a_database_not_named_bench(script, env):
    result = _run(*script, **env)

    assert result.returncode != 0
    assert "refusing" in result.stderr + result.stdout


def test_the_scale_benchmark_names_the_refused_database():
    result = _run("bench/run_all.py", "--only", "idle", BENCH_SCALE_DB="bench_scale; DROP DATABASE x")

    assert result.returncode != 0
    assert "refusing database 'bench_scale; DROP DATABASE x'" in result.stderr
