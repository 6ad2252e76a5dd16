"""End to end with real processes: Commerce invoices that arrive before their orders wait; each is linked within
seconds of its order's AR invoice being posted in the mock Fusion (woken by the order, not by its five-minute
timer), and every order's tax goes as manual tax lines the mock accepts."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from audit.models import AuditEvent
from connector.models import Record
from mocks.fusion import MockFusion
from tests.e2e.processes import flush_redis, free_port, process_env, processes, require_services, wait_for
from tests.factories import add_hmac_key
from tests.mockservers import SEED, mock_connection, running
from tests.posting import seed_mappings

pytestmark = [pytest.mark.e2e]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commerce"
SECRET = "e2e-webhook-secret"
ORDERS = 12
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]
LINKED_WITHIN_SECONDS = 15  # the invoice's own timer is 300 s


def _order_body(n: int) -> bytes:
    payload = json.loads((FIXTURES / "order_place_after.json").read_text())
    order = copy.deepcopy(payload["data"]["order"])
    order.update(entity_id=str(20_000 + n), increment_id=f"{200_000_000 + n:09d}")
    payload["data"] = {"order": order}
    return json.dumps(payload).encode()


def _invoice_body(n: int) -> bytes:
    payload = json.loads((FIXTURES / "invoice_save_after.json").read_text())
    invoice = copy.deepcopy(payload["data"]["invoice"])
    invoice.update(entity_id=str(30_000 + n), increment_id=f"{300_000_000 + n:09d}", order_id=str(20_000 + n))
    payload["data"] = {"invoice": invoice}
    return json.dumps(payload).encode()


def _deliver(url: str, body: bytes) -> int:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Commerce-Signature": signature}
    return requests.post(url, data=body, headers=headers, timeout=30).status_code


def _states(kind: str) -> dict[str, int]:
    states: dict[str, int] = {}
    for state in Record.objects.filter(kind=kind).values_list("state", flat=True):
        states[state] = states.get(state, 0) + 1
    return states


@pytest.mark.django_db(transaction=True)
def test_invoices_that_arrive_first_are_linked_within_seconds_of_their_order_posting(allow_local_endpoints, tmp_path):
    require_services()
    flush_redis(BROKER_DB, CACHE_DB)
    with running(MockFusion(seed=SEED)) as mock:
        connection = mock_connection(mock, commerce_base_url="http://127.0.0.1:9", retry_base_seconds=1)
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
            assert [_deliver(url, _invoice_body(n)) for n in range(ORDERS)] == [200] * ORDERS

            def invoices_waiting():
                return _states(Record.Kind.INVOICE).get(Record.State.RETRYING) == ORDERS

            wait_for(invoices_waiting, timeout=60, procs=procs, what="the invoices to wait for their orders")
            assert [_deliver(url, _order_body(n)) for n in range(ORDERS)] == [200] * ORDERS

            def all_settled():
                return (
                    _states(Record.Kind.ORDER).get(Record.State.POSTED) == ORDERS
                    and _states(Record.Kind.INVOICE).get(Record.State.LINKED) == ORDERS
                )

            try:
                wait_for(all_settled, timeout=120, interval=1, procs=procs, what="orders posted and invoices linked")
            except AssertionError:
                raise AssertionError(
                    f"orders {_states(Record.Kind.ORDER)}, invoices {_states(Record.Kind.INVOICE)}"
                ) from None

        lags = []
        for invoice in Record.objects.filter(kind=Record.Kind.INVOICE).select_related("linked_record"):
            linked = AuditEvent.objects.get(action="record.linked", target_id=str(invoice.pk)).occurred_at
            lags.append((linked - invoice.linked_record.posted_at).total_seconds())
        assert max(lags) < LINKED_WITHIN_SECONDS, sorted(lags)
        state = mock.state()
        assert state["invoices_created"] == ORDERS and state["rejected_creates"] == 0, state
        stored = next(iter(mock.invoices.rows.values()))
        assert all(
            t["TaxRegimeCode"] == "US SALES AND USE TAX" and t["TaxRateCode"] == "STD"
            for line in stored["receivablesInvoiceLines"]
            for t in line.get("receivablesInvoiceLineTaxLines", [])
        )
