"""Several processes, one scrape: what a Celery worker child counted in its own directory and what this web
process counted are summed per label set, and the database figures come once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.metrics_dir import multiprocess_dir_reset
from core import metrics
from tests.factories import make_connection
from tests.metrics_support import metrics_dir, samples, value  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-0123456789"
WRITER = """
import sys
from core import metrics
metrics.RECORD_RETRIES.labels("shop", "server_error").inc(int(sys.argv[1]))
metrics.POSTING_LATENCY.labels("shop").observe(float(sys.argv[2]))
"""


def _in_another_process(directory: Path, *args: str) -> None:
    directory.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WRITER, *args], env=env, check=True, cwd=ROOT, timeout=120)


@pytest.mark.django_db
def test_the_scrape_sums_every_process(client, settings, metrics_dir):  # noqa: F811
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    make_connection(slug="shop")
    metrics.RECORD_RETRIES.labels("shop", "server_error").inc(1)
    metrics.POSTING_LATENCY.labels("shop").observe(0.2)
    _in_another_process(metrics_dir / "worker", "2", "40")
    _in_another_process(metrics_dir / "worker", "4", "4000")  # a later pool child, another pid, same directory

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = response.content.decode()
    parsed = samples(text)
    assert value(parsed, "ml_connector_record_retries_total", connection="shop", reason="server_error") == 7
    latency = "ml_connector_posting_latency_seconds"
    assert value(parsed, f"{latency}_count", connection="shop") == 3
    assert value(parsed, f"{latency}_bucket", connection="shop", le="0.25") == 1
    assert value(parsed, f"{latency}_bucket", connection="shop", le="60.0") == 2
    assert value(parsed, f"{latency}_bucket", connection="shop", le="+Inf") == 3
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)) and "# TYPE ml_connector_records gauge" in types  # each family once


def test_a_process_group_directory_is_emptied_at_start(tmp_path, monkeypatch):
    group = tmp_path / "worker"
    group.mkdir()
    (group / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(group))
    assert multiprocess_dir_reset() == group
    assert list(group.iterdir()) == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "web"))
    assert multiprocess_dir_reset() == tmp_path / "web" and (tmp_path / "web").is_dir()


GUNICORN_WORKER = """
import os, runpy
import config  # what loading the config file imports first; it may import prometheus_client already
settings = runpy.run_path("config/gunicorn.py")
settings["on_starting"](None)  # the master
if os.fork() == 0:  # a worker
    from core import metrics
    metrics.HTTP_REQUESTS.labels("Fusion", "GET", "receivablesInvoices", "2xx").inc()
    os._exit(0)
os.wait()
"""


def test_gunicorn_workers_write_to_the_web_directory_emptied_by_the_master(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "counter_1.db").write_bytes(b"from an earlier start")
    env = {"PATH": "/usr/bin:/bin", "CONNECTOR_METRICS_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", GUNICORN_WORKER], env=env, check=True, cwd=ROOT, timeout=120)
    files = [path.name for path in web.iterdir()]
    assert len(files) == 1 and files[0].startswith("counter_") and files[0] != "counter_1.db"


@pytest.mark.django_db
def test_one_process_serves_its_own_values(client, settings, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    make_connection(slug="solo")

    def retries() -> float:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        parsed = samples(response.content)
        assert value(parsed, "ml_connector_records", connection="solo", state="posted") == 0
        return value(parsed, "ml_connector_record_retries_total", connection="solo", reason="rate_limited") or 0

    before = retries()
    metrics.RECORD_RETRIES.labels("solo", "rate_limited").inc(3)
    assert retries() == before + 3
