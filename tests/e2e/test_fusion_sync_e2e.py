"""End to end: the sync from Fusion against the mock Fusion and mock Commerce servers, each in its own process (so
the run's memory is the run's own), seeded at scale: 2,000 items and 500 customer accounts; a first full sync,
then 20 changes (10 items, 10 accounts) and a second run that writes exactly those 20, then an idle run that makes
one Fusion request per stream and no Commerce request; then the first sync again with ten times the items, whose
peak memory must stay within 1.3 times the first one's. Each first sync runs `manage.py sync_from_fusion` in a
child process, which reports its peak resident memory (VmHWM): the run's own, without the mocks' data or the test
process. The figures are printed (pytest -s).

FUSION_SYNC_E2E_LARGE sets the large run's item count: 5,000 by default, to keep the suite's time down;
`bench/fusion_sync.py` runs it with 20,000 (0 skips the large run)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from django.conf import settings
from django.core.cache import cache

from connector.models import Connection
from sync.flows.fusion_runs import fusion_sync_run
from sync.models import FusionSyncSettings, SyncRun
from tests.e2e.processes import ROOT, free_port, process_env, processes, require_services, wait_for
from tests.factories import make_connection

pytestmark = [pytest.mark.e2e]
SMALL, CUSTOMERS = 2_000, 500
LARGE = int(os.environ.get("FUSION_SYNC_E2E_LARGE", "5000"))
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]


class Mocks:
    def __init__(self, fusion: str, commerce: str) -> None:
        self.fusion, self.commerce = fusion, commerce

    def state(self, which: str) -> dict[str, Any]:
        return requests.get(f"{getattr(self, which)}/__mock__/state", timeout=30).json()

    def reset_and_scale(self, items: int) -> None:
        for url in (self.fusion, self.commerce):
            requests.post(f"{url}/__mock__/reset", timeout=30).raise_for_status()
        requests.post(
            f"{self.fusion}/__mock__/scale",
            json={"items": items, "customer_accounts": CUSTOMERS, "replace": True},
            timeout=120,
        ).raise_for_status()
        requests.post(
            f"{self.commerce}/__mock__/scale", json={"products": items, "customers": CUSTOMERS}, timeout=120
        ).raise_for_status()


@contextmanager
def mock_servers(tmp_path):
    fusion_port, commerce_port = free_port(), free_port()
    with processes(process_env(broker_db=BROKER_DB, cache_db=CACHE_DB), tmp_path) as procs:
        procs.start("mock_fusion", "python", "manage.py", "mock_fusion", "--port", str(fusion_port))
        procs.start("mock_commerce", "python", "manage.py", "mock_commerce", "--port", str(commerce_port))
        mocks = Mocks(f"http://127.0.0.1:{fusion_port}", f"http://127.0.0.1:{commerce_port}")

        def up() -> bool:
            try:
                return all(requests.get(f"{u}/__mock__/state", timeout=2).ok for u in (mocks.fusion, mocks.commerce))
            except requests.RequestException:
                return False

        wait_for(up, timeout=60, procs=procs, what="the mock servers to answer")
        yield mocks


def _connection(mocks: Mocks, slug: str) -> Connection:
    connection = make_connection(
        slug=slug,
        fusion_base_url=mocks.fusion,
        fusion_token_url=f"{mocks.fusion}/oauth2/v1/token",
        fusion_client_id="mock-fusion-client",
        fusion_client_secret="mock-fusion-secret",
        fusion_scope="urn:opc:resource:consumer::all",
        commerce_base_url=mocks.commerce,
        commerce_consumer_key="mock-consumer-key",
        commerce_consumer_secret="mock-consumer-secret",
        commerce_access_token="mock-access-token",
        commerce_access_token_secret="mock-access-token-secret",
        fusion_max_concurrency=8,
        fusion_max_rps=1000,
    )
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="M1")
    return connection


def _requests(mocks: Mocks) -> tuple[dict[str, int], dict[str, int]]:
    return mocks.state("fusion")["requests_by_path"], mocks.state("commerce")["requests_by_path"]


def _calls_between(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(after.values()) - sum(before.values())


CHILD = """
import django, sys
django.setup()
from django.core.management import call_command
call_command("sync_from_fusion", sys.argv[1], "--stream", "customers", "--stream", "items", "--quiet")
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print("VmHWM_KB", status["VmHWM"].split()[0])
"""


def _first_sync(connection: Connection, mocks: Mocks) -> dict[str, Any]:
    """customers then items, as the schedule runs them, by the command in a child process: its peak RSS."""
    fusion_before, commerce_before = _requests(mocks)
    started = time.monotonic()
    env = process_env(broker_db=BROKER_DB, cache_db=CACHE_DB)
    done = subprocess.run(  # noqa: S603 - our own interpreter and command
        [sys.executable, "-c", CHILD, connection.slug], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout + done.stderr
    fusion_after, commerce_after = _requests(mocks)
    runs = {r.stream: r for r in SyncRun.objects.filter(connection=connection)}
    peak = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("VmHWM_KB"))
    return {
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_kb": int(peak),
        "customers": runs["customers"],
        "items": runs["items"],
        "fusion_calls": _calls_between(fusion_before, fusion_after),
        "commerce_calls": _calls_between(commerce_before, commerce_after),
    }


def _describe(first: dict[str, Any]) -> dict[str, Any]:
    counts = ("read", "written", "unchanged", "failed", "unmatched")
    return {
        **{k: v for k, v in first.items() if k not in ("customers", "items")},
        **{f"{s} {c}": getattr(first[s], c) for s in ("customers", "items") for c in counts},
    }


def _change_20(mocks: Mocks) -> None:
    items = [{"ItemNumber": f"FUS-{n:06d}", "ItemStatusValue": "Inactive"} for n in range(100, 1100, 100)]
    requests.post(f"{mocks.fusion}/__mock__/rows/itemsV2", json=items, timeout=30).raise_for_status()
    sites = [
        {
            "CustomerName": f"Generated Customer {n}",
            "AccountNumber": str(400000 + n),
            "SiteName": f"GEN-{n:05d}-MOVED",
            "SiteUseId": 700000 + n,
            "PrimarySite": "Y",
        }
        for n in range(10, 110, 10)
    ]
    requests.post(f"{mocks.fusion}/__mock__/rows/customerAccountSitesLOV", json=sites, timeout=30).raise_for_status()


@pytest.mark.django_db(transaction=True)
def test_2000_items_and_500_customers_then_20_changes_then_idle_then_20000_items(allow_local_endpoints, tmp_path):
    require_services()
    cache.clear()
    figures: dict[str, Any] = {}
    with mock_servers(tmp_path) as mocks:
        mocks.reset_and_scale(SMALL)
        connection = _connection(mocks, "e2e-small")
        first = _first_sync(connection, mocks)
        figures["first 2,000"] = _describe(first)
        assert first["items"].written == SMALL and first["items"].failed == 0, figures
        assert first["customers"].written == CUSTOMERS and first["customers"].failed == 0, figures

        _change_20(mocks)
        commerce_before = mocks.state("commerce")
        fusion_before = mocks.state("fusion")["requests"]
        customers = fusion_sync_run(connection=connection, stream="customers")
        items = fusion_sync_run(connection=connection, stream="items")
        commerce_after = mocks.state("commerce")
        assert (customers.counts.written, items.counts.written) == (10, 10), (customers.counts, items.counts)
        assert commerce_after["customers_updated"] - commerce_before["customers_updated"] == 10
        assert commerce_after["products_updated"] - commerce_before["products_updated"] == 10
        writes = commerce_after["product_writes"][len(commerce_before["product_writes"]) :]
        assert sorted(w["sku"] for w in writes) == [f"FUS-{n:06d}" for n in range(100, 1100, 100)]
        assert {w["scope"] for w in writes} == {"all"}
        figures["second (20 changes)"] = {
            "customers": customers.counts.line(),
            "items": items.counts.line(),
            "fusion_calls": mocks.state("fusion")["requests"] - fusion_before,
            "commerce_calls": commerce_after["requests"] - commerce_before["requests"],
        }

        fusion_before_paths, commerce_before_paths = _requests(mocks)
        idle = [fusion_sync_run(connection=connection, stream=s) for s in ("customers", "items", "gl")]
        fusion_after_paths, commerce_after_paths = _requests(mocks)
        assert _calls_between(commerce_before_paths, commerce_after_paths) == 0
        assert _calls_between(fusion_before_paths, fusion_after_paths) == 2  # one per Fusion stream; GL reads none
        assert [r.counts.fusion_requests for r in idle] == [1, 1, 0]
        assert all(r.counts.written == 0 for r in idle)
        figures["idle"] = {"fusion_calls": 2, "commerce_calls": 0}

        if LARGE:
            mocks.reset_and_scale(LARGE)
            large = _first_sync(_connection(mocks, "e2e-large"), mocks)
            figures[f"first {LARGE:,}"] = _describe(large)
            assert large["items"].written == LARGE and large["items"].failed == 0, figures
            ratio = large["peak_rss_kb"] / first["peak_rss_kb"]
            figures["peak RSS ratio"] = round(ratio, 3)
            assert ratio <= 1.3, figures
    print("\nsync from Fusion end to end:")
    for name, value in figures.items():
        print(f"  {name}: {value}")
