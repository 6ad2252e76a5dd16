"""The production entry point (config.wsgi.application, what gunicorn serves): Commerce's webhooks go straight to
their view, around the middleware stack, and keep what of Django matters to them; everything else goes through
Django as before. Called as a WSGI server calls it, in autocommit as in production."""

import hashlib
import hmac
import io
import json
import logging
from pathlib import Path
from unittest import mock

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler

from commerce.models import Delivery
from commerce.verifiers import receiver_cache_clear
from commerce.webhooks import WebhookFastPath
from config.wsgi import application
from connector.models import Record
from connector.wakeups import wakeups_flush
from tests.factories import add_hmac_key, make_connection

BODY = (Path(__file__).resolve().parent.parent / "fixtures" / "commerce" / "order_place_after.json").read_bytes()
SECRET = "whsec-entry"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_receivers(settings):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 0
    receiver_cache_clear()
    with mock.patch("connector.wakeups.records_wake"), mock.patch("connector.wakeups.deliveries_wake"):
        yield
        wakeups_flush()
    receiver_cache_clear()


@pytest.fixture
def shop():
    conn = make_connection()
    add_hmac_key(conn, secret=SECRET)
    return conn


def call(path: str, body: bytes = b"", *, method="POST", host="localhost", app=application, **headers: str):
    """One request through the WSGI application: (status code, headers, body)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    started: dict = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=int(status.split()[0]), headers=dict(response_headers))

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # what the server does: ends the request (request_finished)
    return started["status"], started["headers"], content


def signed(body: bytes = BODY) -> dict[str, str]:
    return {"X_COMMERCE_SIGNATURE": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def test_a_signed_delivery_is_stored_and_answered_with_the_request_lifecycle_of_any_request(shop):
    seen = []

    def started(**kwargs):
        seen.append("started")

    def finished(**kwargs):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        status, headers, content = call(f"/webhooks/commerce/{shop.slug}/", BODY, **signed())
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert (status, json.loads(content)) == (200, {"op": "success"})
    assert seen == ["started", "finished"]  # database connections are checked and recycled as for any request
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Length"] == str(len(content))
    delivery = Delivery.objects.get()
    assert delivery.status == "received" and bytes(delivery.body) == BODY  # a worker makes the record
    assert not Record.objects.exists()


def test_a_bad_signature_is_refused_on_the_same_path(shop):
    status, _, content = call(f"/webhooks/commerce/{shop.slug}/", BODY, X_COMMERCE_SIGNATURE="0" * 64)
    assert status == 401 and json.loads(content)["error"] == "bad_signature"
    assert not Delivery.objects.exists() and not Record.objects.exists()


def test_a_host_this_connector_does_not_serve_is_400_and_stores_nothing(shop):
    status, _, content = call(f"/webhooks/commerce/{shop.slug}/", BODY, host="evil.example", **signed())
    assert status == 400 and json.loads(content)["error"] == "bad_host"
    assert not Delivery.objects.exists()


def test_https_redirect_is_left_to_django_and_https_is_served(shop, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    app = WebhookFastPath(WSGIHandler())  # middleware reads its settings at start-up
    status, headers, _ = call(f"/webhooks/commerce/{shop.slug}/", BODY, app=app, **signed())
    assert status == 301 and headers["Location"] == f"https://localhost/webhooks/commerce/{shop.slug}/"
    assert not Delivery.objects.exists()
    status, headers, _ = call(f"/webhooks/commerce/{shop.slug}/", BODY, app=app, X_FORWARDED_PROTO="https", **signed())
    assert status == 200 and headers["Strict-Transport-Security"].startswith("max-age=3600")
    assert Delivery.objects.count() == 1


def test_an_unexpected_error_is_logged_and_answered_500_not_success(shop, caplog):
    failures = []

    def record_failure(**kwargs):
        failures.append(kwargs["request"].path)

    signals.got_request_exception.connect(record_failure)
    try:
        with (
            mock.patch("commerce.webhooks.delivery_store", side_effect=RuntimeError("disk on fire")),
            caplog.at_level(logging.ERROR, logger="commerce.webhooks"),
        ):
            status, _, content = call(f"/webhooks/commerce/{shop.slug}/", BODY, **signed())
    finally:
        signals.got_request_exception.disconnect(record_failure)
    assert status == 500
    assert json.loads(content)["error"] == "internal_error"
    assert "disk on fire" in caplog.text and failures == [f"/webhooks/commerce/{shop.slug}/"]


def test_every_other_path_still_goes_through_django_and_its_middleware(shop):
    status, headers, _ = call("/admin/", method="GET")
    assert status == 302 and "/admin/login/" in headers["Location"]  # the authentication middleware ran
    status, _, _ = call(f"/webhooks/commerce/{shop.slug}", BODY, **signed())  # no trailing slash: not ours
    assert status != 200
    assert not Delivery.objects.exists()


def test_an_unsigned_deeply_nested_body_is_refused_401_without_an_error_logged(shop, caplog):
    body = b"[" * 100_000 + b"]" * 100_000
    with caplog.at_level(logging.DEBUG):
        status, _, content = call(f"/webhooks/commerce/{shop.slug}/", body, X_COMMERCE_SIGNATURE="0" * 64)
    assert status == 401 and json.loads(content)["error"] == "bad_signature"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not Delivery.objects.exists()


def test_a_signed_document_the_columns_cannot_hold_is_answered_200_and_stored(shop):
    order = json.loads(BODY)
    order["data"]["order"]["grand_total"] = "1e30"
    body = json.dumps(order).encode()
    status, _, content = call(f"/webhooks/commerce/{shop.slug}/", body, **signed(body))
    assert (status, json.loads(content)) == (200, {"op": "success"})
    assert bytes(Delivery.objects.get().body) == body
