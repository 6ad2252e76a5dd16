"""A run, then a scrape: three webhooks (one refused), two orders posted through the posting flow against a
`responses`-mocked Fusion (one after a 503), one parked on Fusion's 400. The families Prometheus reads show
exactly that, and the figures the database holds are computed with the same few queries however much is in it."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import responses
from django.core.cache import cache
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from commerce.deliveries import delivery_record
from commerce.models import Delivery
from commerce.verifiers import receiver_cache_clear
from connector.models import Record
from connector.records import record_accept
from fusion.models import JournalBatch
from sync.flows.sales_documents import record_process
from sync.metrics import DatabaseCollector
from sync.models import SyncRun
from tests.factories import add_hmac_key, make_connection
from tests.fake_fusion import FakeFusion
from tests.metrics_support import metrics_dir, samples, value  # noqa: F401  (fixture)
from tests.posting import order_document, seed_mappings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commerce"
SECRET = "whsec-metrics"
TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def _isolated(metrics_dir, settings):  # noqa: F811
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 0
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    receiver_cache_clear()
    cache.clear()
    yield
    receiver_cache_clear()
    cache.clear()


@pytest.fixture
def fusion():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFusion(rsps)


@pytest.fixture
def shop(db):
    conn = make_connection(slug="shop", retry_base_seconds=0, retry_cap_seconds=0)
    add_hmac_key(conn, secret=SECRET)
    seed_mappings(conn)
    return conn


def _order_body(entity_id: int) -> bytes:
    order = json.loads((FIXTURES / "order_place_after.json").read_bytes())
    for key in ("order", "data_object"):
        if key in order.get("data", {}):
            order["data"][key].update(entity_id=str(entity_id), increment_id=f"{entity_id:09d}")
    return json.dumps(order).encode()


def _deliver(client, body: bytes, secret: str = SECRET):
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/commerce/shop/",
        data=body,
        content_type="application/json",
        headers={"X-Commerce-Signature": signature},
    )


def _scrape(client) -> dict:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return samples(response.content)


def test_a_run_shows_exactly_its_counts(client, shop, fusion, django_capture_on_commit_callbacks):
    assert _deliver(client, _order_body(501)).status_code == 200
    assert _deliver(client, _order_body(502)).status_code == 200
    assert _deliver(client, _order_body(503), secret="not-the-secret").status_code == 401
    parsed = _scrape(client)
    assert value(parsed, "ml_connector_pending", connection="shop", stage="delivery") == 2
    assert value(parsed, "ml_connector_oldest_pending_age_seconds", connection="shop") > 0

    for delivery in Delivery.objects.order_by("pk"):
        delivery_record(delivery.pk)
    fusion.post_failures.append((503, {"title": "Service Unavailable"}))
    records = list(Record.objects.order_by("pk"))
    with django_capture_on_commit_callbacks(execute=True):  # the latency is observed once the posting commits
        for record in records:
            record_process(record_id=record.pk)  # the first meets the 503 and waits for its retry
        record_process(record_id=records[0].pk)
        fusion.post_failures.append((400, {"title": "Bad Request", "detail": "The payment terms are not valid."}))
        parked = record_accept(connection=shop, document=order_document("777")).record
        record_process(record_id=parked.pk)
    assert [r.state for r in Record.objects.order_by("pk")] == ["posted", "posted", "needs_review"]

    parsed = _scrape(client)
    deliveries = "ml_connector_webhook_deliveries_total"
    assert value(parsed, deliveries, connection="shop", outcome="accepted", reason="") == 2
    assert value(parsed, deliveries, connection="shop", outcome="refused", reason="bad_signature") == 1
    assert value(parsed, "ml_connector_records", connection="shop", state="posted") == 2
    assert value(parsed, "ml_connector_records", connection="shop", state="needs_review") == 1
    assert value(parsed, "ml_connector_records", connection="shop", state="received") == 0
    assert value(parsed, "ml_connector_pending", connection="shop", stage="delivery") == 0
    assert value(parsed, "ml_connector_pending", connection="shop", stage="record") == 0
    assert value(parsed, "ml_connector_oldest_pending_age_seconds", connection="shop") == 0
    assert value(parsed, "ml_connector_posting_latency_seconds_count", connection="shop") == 2
    assert value(parsed, "ml_connector_posting_latency_seconds_bucket", connection="shop", le="3600.0") == 2
    assert value(parsed, "ml_connector_record_retries_total", connection="shop", reason="server_error") == 1
    calls = "ml_connector_http_requests_total"
    invoices = {"system": "Fusion", "method": "POST", "resource": "receivablesInvoices"}
    assert value(parsed, calls, outcome="2xx", **invoices) == 2
    assert value(parsed, calls, outcome="5xx", **invoices) == 1
    assert value(parsed, calls, outcome="4xx", **invoices) == 1


def _collect_queries() -> int:
    with CaptureQueriesContext(db_connection) as queries:
        families = list(DatabaseCollector().collect())
    assert {f.name for f in families} >= {"ml_connector_records", "ml_connector_journal_batches"}
    return len(queries)


def test_database_figures_take_the_same_queries_however_much_there_is(db):
    empty = _collect_queries()
    for n in range(4):
        conn = make_connection(slug=f"shop-{n}")
        for i in range(3):
            record_accept(connection=conn, document=order_document(f"{n}{i}"))
        JournalBatch.objects.create(connection=conn, group_id=1000 + n, name=f"batch {n}")
        SyncRun.objects.create(connection=conn, stream="customers", status="done")
    assert _collect_queries() == empty <= 5


def test_journal_batches_and_sync_runs_by_state(client, shop):
    JournalBatch.objects.create(connection=shop, group_id=1, name="b1", state="needs_review")
    JournalBatch.objects.create(connection=shop, group_id=2, name="b2", state="succeeded")
    JournalBatch.objects.create(connection=shop, group_id=3, name="b3", state="succeeded")
    SyncRun.objects.create(connection=shop, stream="items", status="failed")
    SyncRun.objects.create(connection=shop, stream="items", status="done")
    parsed = _scrape(client)
    assert value(parsed, "ml_connector_journal_batches", connection="shop", state="needs_review") == 1
    assert value(parsed, "ml_connector_journal_batches", connection="shop", state="succeeded") == 2
    assert value(parsed, "ml_connector_journal_batches", connection="shop", state="open") == 0
    assert value(parsed, "ml_connector_sync_runs", connection="shop", stream="items", outcome="failed") == 1
    assert value(parsed, "ml_connector_sync_runs", connection="shop", stream="items", outcome="done") == 1


def test_refusals_are_counted_by_reason_without_trusting_an_unknown_slug(client, shop, settings):
    settings.CONNECTOR_WEBHOOK_MAX_BYTES = 64
    body = _order_body(601)
    assert _deliver(client, body).status_code == 413
    assert client.post("/webhooks/commerce/not-a-shop/", data=b"{}", content_type="application/json").status_code == 404
    malformed = client.post("/webhooks/commerce/shop/", data=b"{}", content_type="application/json", CONTENT_LENGTH="x")
    assert malformed.status_code == 400
    assert client.delete("/webhooks/commerce/shop/").status_code == 405
    parsed = _scrape(client)
    deliveries = "ml_connector_webhook_deliveries_total"
    assert value(parsed, deliveries, connection="shop", outcome="refused", reason="too_large") == 1
    assert value(parsed, deliveries, connection="", outcome="refused", reason="unknown_connection") == 1
    assert value(parsed, deliveries, connection="", outcome="refused", reason="malformed") == 1
    assert value(parsed, deliveries, connection="", outcome="refused", reason="method_not_allowed") == 1
    assert not any(dict(labels).get("connection") == "not-a-shop" for _, labels in parsed)
