"""End to end with real processes: gunicorn receives signed order webhooks, Celery workers post them to the
mock Fusion server on loopback while it fails a share of calls and drops connections after committing some
creates, beat's relay wakes what is due. Every order must become exactly one AR invoice."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from connector.models import Record
from mocks.fusion import MockFusion
from tests.e2e.processes import flush_redis, free_port, process_env, processes, require_services, wait_for
from tests.factories import add_hmac_key
from tests.mockservers import SEED, mock_connection, running
from tests.posting import seed_mappings

pytestmark = [pytest.mark.e2e]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "commerce" / "order_place_after.json"
SECRET = "e2e-webhook-secret"
ORDERS = 200
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]


def _order_body(n: int) -> bytes:
    payload = json.loads(FIXTURE.read_text())
    order = copy.deepcopy(payload["data"]["order"])
    order["entity_id"] = str(10_000 + n)
    order["increment_id"] = f"{100_000_000 + n:09d}"
    for item in order["items"]:
        item["order_id"] = order["entity_id"]
    payload["data"] = {"order": order}
    return json.dumps(payload).encode()


def _deliver(url: str, body: bytes) -> int:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Commerce-Signature": signature},
        timeout=30,
    )
    return response.status_code


@pytest.mark.django_db(transaction=True)
def test_200_signed_orders_become_200_ar_invoices_exactly_once_through_faults(allow_local_endpoints, tmp_path):
    require_services()
    flush_redis(BROKER_DB, CACHE_DB)
    mock = MockFusion(seed=SEED, error_rate=0.2, drop_after_commit_rate=0.15)
    with running(mock):
        connection = mock_connection(
            mock,
            commerce_base_url="http://127.0.0.1:9",
            retry_base_seconds=1,
            retry_cap_seconds=3,
            retry_max_attempts=60,
            fusion_max_concurrency=8,
            fusion_max_rps=200,
        )
        seed_mappings(connection)
        add_hmac_key(connection, secret=SECRET)
        every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name="relay", task="connector.relay", interval=every_2s)

        port = free_port()
        with processes(process_env(broker_db=BROKER_DB, cache_db=CACHE_DB), tmp_path) as procs:
            procs.web(port)
            procs.worker(concurrency=4)
            procs.beat()
            base = f"http://127.0.0.1:{port}"

            def web_up():
                try:
                    return requests.get(f"{base}/healthz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_for(web_up, timeout=60, procs=procs, what="gunicorn to answer /healthz")
            url = f"{base}/webhooks/commerce/{connection.slug}/"
            with ThreadPoolExecutor(max_workers=8) as pool:
                statuses = list(pool.map(lambda n: _deliver(url, _order_body(n)), range(ORDERS)))
            assert statuses == [200] * ORDERS

            def all_posted():
                return Record.objects.filter(state=Record.State.POSTED).count() == ORDERS

            try:
                wait_for(all_posted, timeout=420, interval=2, procs=procs, what=f"{ORDERS} records to be posted")
            except AssertionError:
                states = {}
                for record in Record.objects.all():
                    states.setdefault(record.state, []).append((record.commerce_number, record.last_error[:200]))
                raise AssertionError(f"record states: { {k: v[:3] for k, v in states.items()} }") from None

        state = mock.state()
        numbers = sorted(Record.objects.values_list("fusion_transaction_number", flat=True))
        assert Record.objects.count() == ORDERS
        assert len(set(numbers)) == ORDERS
        assert state["invoices"] == ORDERS, state
        assert state["invoices_created"] == ORDERS, state
        assert state["rejected_creates"] == 0, state  # no second POST of a number Fusion already had
        # The faults really happened: otherwise this test would prove nothing about them.
        assert state["faults_injected"] > 20, state
        assert state["dropped_after_commit"] > 5, state
