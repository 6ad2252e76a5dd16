"""GET /metrics: off (404) unless a token or an address list is configured; then a missing or wrong token is
401, an address outside the list 403, and what is answered parses as Prometheus text."""

from __future__ import annotations

import pytest

from tests.factories import make_connection
from tests.metrics_support import metrics_dir, samples, value  # noqa: F401  (fixture)

TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def _isolated(metrics_dir, db):  # noqa: F811
    return metrics_dir


def test_off_by_default_answers_404(client, settings):
    settings.CONNECTOR_METRICS_TOKEN = ""
    settings.CONNECTOR_METRICS_ALLOWED_ADDRESSES = []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN]
)
def test_missing_or_wrong_token_is_401(client, settings, authorization):
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"ml_connector" not in response.content


def test_right_token_reads_the_metrics(client, settings):
    make_connection(slug="shop")
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    parsed = samples(response.content)
    assert value(parsed, "ml_connector_pending", connection="shop", stage="record") == 0


def test_address_outside_the_list_is_403(client, settings):
    settings.CONNECTOR_METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8", "192.0.2.7"]
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.8").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200


def test_with_both_a_scrape_needs_the_address_and_the_token(client, settings):
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    settings.CONNECTOR_METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", headers=bearer).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1", headers=bearer).status_code == 200


def test_only_get(client, settings):
    settings.CONNECTOR_METRICS_TOKEN = TOKEN
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
