"""The webhook receiver end to end through Django: a verified delivery is stored as it came and answered; a worker
reads it into a record (here: `read`, what the delivery task does); everything else is refused with a JSON
answer that names the problem and leaves at most a capped counter behind."""

import base64
import hashlib
import hmac
import io
import json
import logging
import time
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import IntegrityError, close_old_connections
from django.db import connection as db_connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from commerce.deliveries import delivery_record
from commerce.envelopes import envelope_parse
from commerce.models import Delivery, DeliveryRejection
from commerce.payloads import document_from_entity
from commerce.rejections import rejections_flush
from commerce.verifiers import receiver_cache_clear
from commerce.webhooks import commerce_webhook
from connector.models import Record, WebhookKey
from connector.wakeups import _Waker, delivery_waker, waker, wakeups_flush
from sync.relay import relay_due, relay_unread_deliveries
from sync.tasks import read_deliveries
from tests.factories import add_hmac_key, make_connection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"
SECRET = "whsec-test"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def _no_receiver_cache(settings):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 0
    receiver_cache_clear()
    yield
    receiver_cache_clear()


@pytest.fixture
def shop(db):
    conn = make_connection()
    add_hmac_key(conn, secret=SECRET, label="primary")
    return conn


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def read() -> list:
    """What a worker does: read every stored, unread delivery into a record."""
    unread = Delivery.objects.filter(status="received").order_by("id").values_list("pk", flat=True)
    return [delivery_record(pk) for pk in unread]


def post(client, conn_or_slug, body: bytes, *, signature: str | None = None, request_id: str | None = None, **extra):
    slug = getattr(conn_or_slug, "slug", conn_or_slug)
    headers = dict(extra.pop("headers", {}))
    if signature is not None:
        headers["X-Commerce-Signature"] = signature
    if request_id is not None:
        headers["x-adobe-commerce-request-id"] = request_id
    return client.post(
        f"/webhooks/commerce/{slug}/", data=body, content_type="application/json", headers=headers, **extra
    )


# --- stored, then read ---------------------------------------------------------------------------------


def test_signed_order_is_stored_as_received_and_answered_success(client, shop, django_capture_on_commit_callbacks):
    body = raw("order_place_after.json")
    with mock.patch("connector.wakeups.deliveries_wake") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, shop, body, signature=sign(body), request_id="req-1")
        wakeups_flush()
    assert response.status_code == 200
    assert response.json() == {"op": "success"}
    delivery = Delivery.objects.get()
    assert delivery.status == "received" and delivery.record is None  # stored as it came; nothing read yet
    assert bytes(delivery.body) == body  # byte for byte
    assert delivery.request_id == "req-1" and delivery.verifier == "hmac:primary"
    assert delivery.source_ip == "127.0.0.1"
    assert delivery.headers["x-commerce-signature"] == "***"  # kept, but redacted
    assert sign(body) not in json.dumps(delivery.headers)
    assert Record.objects.count() == 0
    wake.assert_called_once_with(delivery_ids=[delivery.pk])


def test_the_worker_reads_the_delivery_into_its_record(client, shop):
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body), request_id="req-1")
    (outcome,) = read()
    delivery, record = Delivery.objects.get(), Record.objects.get()
    assert outcome.created and outcome.record_id == record.pk
    assert delivery.status == "accepted" and delivery.record == record
    assert delivery.event_name == "observer.sales_order_save_commit_after"
    assert delivery.body_sha256 == hashlib.sha256(body).hexdigest() and bytes(delivery.body) == body
    assert (record.kind, record.commerce_entity_id, record.commerce_number) == ("order", "42", "000000042")
    assert record.state == Record.State.RECEIVED and record.source == "webhook"
    assert str(record.grand_total) == "85.9900" and record.document["grand_total"] == "85.99"
    event = AuditEvent.objects.get(action="record.received", target_id=str(record.pk))
    assert event.actor == "system:webhook:hmac" and event.correlation_id == "req-1"
    assert read() == []  # read once


@pytest.mark.parametrize(
    "name",
    [
        "order_place_after.json",
        "order_gift_card_tax_inclusive.json",
        "order_plugin_place_before.json",
        "invoice_save_after.json",
        "creditmemo_save_after.json",
    ],
)
def test_the_records_document_is_the_normalised_document_of_every_fixture(client, shop, name):
    body = raw(name)
    post(client, shop, body, signature=sign(body))
    read()
    envelope = envelope_parse(json.loads(body))
    expected = document_from_entity(envelope.kind, envelope.entity).to_json()
    record = Record.objects.get()
    assert record.document == {**expected, "entity_id": record.commerce_entity_id}


def test_a_delivery_is_read_once_and_its_new_record_is_woken_after_commit(client, shop):
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body))
    delivery = Delivery.objects.get()
    with mock.patch("sync.tasks.records_wake") as wake:
        assert read_deliveries([delivery.pk, delivery.pk]) == 1
    wake.assert_called_once_with(record_ids=[Record.objects.get().pk])


def test_nothing_is_woken_before_the_transaction_commits(client, shop, django_capture_on_commit_callbacks):
    body = raw("order_place_after.json")
    with mock.patch("connector.wakeups.deliveries_wake") as wake, django_capture_on_commit_callbacks() as callbacks:
        post(client, shop, body, signature=sign(body))
        wake.assert_not_called()
    assert len(callbacks) == 1


def test_the_request_does_not_parse_the_body(client, shop):
    body = raw("order_place_after.json")
    with (
        mock.patch("commerce.deliveries.envelope_parse", side_effect=AssertionError("parsed in the request")),
        mock.patch("orjson.loads", side_effect=AssertionError("parsed in the request")),
    ):
        assert post(client, shop, body, signature=sign(body)).status_code == 200
    assert Delivery.objects.get().status == "received"


def test_adobe_native_rsa_signature_is_accepted(client, db, rsa_key):
    conn = make_connection()
    WebhookKey.objects.create(connection=conn, scheme="adobe_rsa", public_key=public_pem(rsa_key), label="admin")
    body = raw("invoice_save_after.json")
    signature = base64.b64encode(rsa_key.sign(base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())).decode()
    response = post(client, conn, body, headers={"x-adobe-commerce-webhook-signature": signature})
    assert response.status_code == 200
    read()
    record = Record.objects.get()
    assert (record.kind, record.commerce_entity_id, record.commerce_order_id) == ("invoice", "3", "42")
    assert Delivery.objects.get().verifier == "adobe_rsa:admin"


def test_chunked_body_within_the_limit_is_read_from_the_stream(shop):
    body = raw("order_place_after.json")
    request = RequestFactory().generic(
        "POST",
        f"/webhooks/commerce/{shop.slug}/",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        HTTP_X_COMMERCE_SIGNATURE=sign(body),
    )
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = io.BytesIO(body)
    response = commerce_webhook(request, shop.slug)
    assert response.status_code == 200
    assert bytes(Delivery.objects.get().body) == body


def order_body(entity_id: int, **changes) -> bytes:
    order = json.loads(raw("order_place_after.json"))
    for key in ("order", "data_object"):
        order["data"][key].update(entity_id=str(entity_id), increment_id=f"{entity_id:09d}", **changes)
    return json.dumps(order).encode()


def test_the_webhook_statement_is_prepared_once_per_database_connection(client, shop, postgres_only):
    # Planning the one INSERT of a delivery cost PostgreSQL as much as running it: after a few deliveries on a
    # connection it is prepared there and only executed (DB_PREPARE_THRESHOLD).
    for entity_id in range(1001, 1008):
        body = order_body(entity_id)
        assert post(client, shop, body, signature=sign(body)).status_code == 200
    assert Delivery.objects.count() == 7
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%INSERT INTO commerce_delivery%"],
        )
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db(transaction=True)
def test_a_delivery_runs_no_separate_health_check_of_a_live_database_connection(client, shop, settings, postgres_only):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 60  # the connection and its keys come from the cache
    first = order_body(2001)
    assert post(client, shop, first, signature=sign(first)).status_code == 200  # the connection is kept
    second = order_body(2002)
    close_old_connections()  # what a new request does first (the test client leaves it out)
    with mock.patch.object(db_connection, "is_usable", wraps=db_connection.is_usable) as is_usable:
        assert post(client, shop, second, signature=sign(second)).status_code == 200
    is_usable.assert_not_called()  # the write itself showed the connection works
    assert Delivery.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_database_connection_that_died_while_idle_costs_no_delivery(client, shop, settings, postgres_only):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 60  # the delivery's write is its first query
    first = order_body(3001)
    assert post(client, shop, first, signature=sign(first)).status_code == 200
    kept = db_connection.connection
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    database = db_connection.settings_dict
    params = {"dbname": database["NAME"], "user": database["USER"], "host": database["HOST"]}
    params.update(port=database["PORT"] or 5432, password=database["PASSWORD"] or None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    second = order_body(3002)
    close_old_connections()  # what a new request does first (the test client leaves it out)
    response = post(client, shop, second, signature=sign(second))
    assert response.status_code == 200 and response.json() == {"op": "success"}
    assert db_connection.connection is not kept  # the dead connection was replaced
    read()
    assert Record.objects.filter(commerce_entity_id="3002").exists()
    assert Delivery.objects.filter(status="accepted").count() == 2


# --- duplicates, ignored, unreadable -------------------------------------------------------------------


def test_five_identical_deliveries_make_one_record(client, shop):
    body = raw("order_place_after.json")
    answers = [post(client, shop, body, signature=sign(body), request_id="req-same") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.json() == {"op": "success"} for a in answers)
    outcomes = read()
    assert [o.created for o in outcomes] == [True] + [False] * 4
    assert Record.objects.count() == 1
    statuses = list(Delivery.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["accepted"] + ["duplicate"] * 4
    assert set(Delivery.objects.values_list("record_id", flat=True)) == {Record.objects.get().pk}
    assert AuditEvent.objects.filter(action="record.duplicate").count() == 4


def test_a_replayed_delivery_keeps_its_headers_and_the_hash_of_its_body_not_the_body_again(client, shop):
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body), request_id="req-first")
    post(client, shop, body, signature=sign(body), request_id="req-replayed")
    read()
    first, replayed = Delivery.objects.order_by("id")
    assert (first.status, replayed.status) == ("accepted", "duplicate")
    assert bytes(first.body) == body  # the document's body is kept once, on the first delivery
    assert bytes(replayed.body) == b""
    assert replayed.body_sha256 == hashlib.sha256(body).hexdigest() == first.body_sha256
    assert replayed.headers["x-adobe-commerce-request-id"] == "req-replayed"
    assert replayed.headers["x-commerce-signature"] == "***"
    assert replayed.record_id == first.record_id


def test_io_events_delivery_is_accepted_and_deduplicated_on_the_event(client, io_shop, rsa_key):
    body = raw("io_events_order_place_after.json")
    headers = io_headers(rsa_key, body) | {"x-adobe-retry-count": "1"}
    assert post(client, io_shop, body, headers=headers).status_code == 200
    assert post(client, io_shop, body, headers=headers).status_code == 200  # I/O Events retries: at-least-once
    read()
    assert Record.objects.get().currency == "JPY"
    assert list(Delivery.objects.order_by("id").values_list("status", "request_id")) == [
        ("accepted", "5b1b5a2e-7e6c-4a53-9b8e-0d7a1c2f3e4d"),
        ("duplicate", "5b1b5a2e-7e6c-4a53-9b8e-0d7a1c2f3e4d"),
    ]


def test_hooks_of_one_commerce_request_share_its_request_id_and_are_not_duplicates(client, shop):
    # Commerce sets x-adobe-commerce-request-id once per PHP request: an order and its invoice (or two orders
    # of a multi-address checkout) can arrive under the same id. Each document is its own record.
    order, invoice = raw("order_place_after.json"), raw("invoice_save_after.json")
    assert post(client, shop, order, signature=sign(order), request_id="req-shared").status_code == 200
    assert post(client, shop, invoice, signature=sign(invoice), request_id="req-shared").status_code == 200
    read()
    assert sorted(Record.objects.values_list("kind", flat=True)) == ["invoice", "order"]
    assert list(Delivery.objects.values_list("status", flat=True)) == ["accepted", "accepted"]


def test_same_document_under_a_new_request_id_attaches_to_the_existing_record(client, shop):
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body), request_id="req-a")
    response = post(client, shop, body, signature=sign(body), request_id="req-b")
    assert response.status_code == 200
    read()
    assert Record.objects.count() == 1
    assert list(Delivery.objects.order_by("id").values_list("status", flat=True)) == ["accepted", "duplicate"]
    assert AuditEvent.objects.filter(action="record.duplicate").count() == 1


def test_order_from_a_before_hook_and_its_saved_version_are_one_record(client, shop):
    before = raw("order_plugin_place_before.json")
    assert post(client, shop, before, signature=sign(before), request_id="r1").status_code == 200
    read()
    record = Record.objects.get()
    assert record.commerce_entity_id == "#000000043" and record.commerce_number == "000000043"
    saved = json.loads(before)["order"] | {"entity_id": "43"}
    after = json.dumps({"eventName": "observer.sales_order_save_commit_after", "data": {"order": saved}}).encode()
    assert post(client, shop, after, signature=sign(after), request_id="r2").status_code == 200
    read()
    record.refresh_from_db()
    assert Record.objects.count() == 1 and record.commerce_entity_id == "43"
    assert Delivery.objects.order_by("-id").first().status == "duplicate"


def test_the_event_named_in_the_hook_url_is_used_for_a_plugin_body(client, shop):
    body = raw("order_plugin_place_before.json")
    hook = "plugin.magento.sales.api.order_management.place"
    response = client.post(
        f"/webhooks/commerce/{shop.slug}/?event={hook}",
        data=body,
        content_type="application/json",
        headers={"X-Commerce-Signature": sign(body)},
    )
    assert response.status_code == 200
    read()
    assert Delivery.objects.get().event_name == hook and Record.objects.get().kind == "order"


def test_unknown_event_type_is_stored_ignored_and_answered_200(client, shop):
    body = json.dumps({"eventName": "observer.catalog_product_save_after", "data": {"product": {"sku": "x"}}}).encode()
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 200 and response.json() == {"op": "success"}
    read()
    delivery = Delivery.objects.get()
    assert delivery.status == "ignored" and delivery.record is None
    assert "catalog_product_save_after" in delivery.note
    assert Record.objects.count() == 0
    assert AuditEvent.objects.get(action="delivery.ignored").target_id == str(delivery.pk)


def unreadable_record(delivery: Delivery) -> Record:
    record = delivery.record
    assert record is not None and record.state == Record.State.NEEDS_REVIEW
    assert record.commerce_entity_id.startswith("!") and len(record.commerce_entity_id) <= 64
    assert record.last_error.startswith("Unreadable: ") and record.resolution_hint.startswith("Resolution:")
    return record


def test_signed_but_unreadable_order_is_parked_for_review(client, shop):
    order = json.loads(raw("order_place_after.json"))
    order["data"]["order"]["grand_total"] = "lots"
    body = json.dumps(order).encode()
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 200
    read()
    delivery = Delivery.objects.get()
    assert delivery.status == "unreadable" and "grand_total is not a number" in delivery.note
    assert bytes(delivery.body) == body
    record = unreadable_record(delivery)
    assert record.kind == "order" and "grand_total is not a number" in record.last_error
    assert record.commerce_number == "000000042"
    event = AuditEvent.objects.get(action="record.unreadable")
    assert event.outcome == "failure" and event.target_id == str(record.pk)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"grand_total": "1e30"}, "grand_total is out of range"),
        ({"grand_total": 1e20}, "grand_total is out of range"),
        ({"entity_id": "9" * 100}, "entity_id is longer than 64 characters"),
        ({"increment_id": "X" * 100}, "increment_id is longer than 64 characters"),
        ({"shipping_amount": "NaN"}, "shipping_amount is not a finite number"),
    ],
)
def test_a_signed_document_out_of_the_columns_range_is_answered_200_and_parked_unreadable(client, shop, change, reason):
    order = json.loads(raw("order_place_after.json"))
    order["data"]["order"].update(change)
    order["data"].pop("data_object")
    body = json.dumps(order).encode()
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 200 and response.json() == {"op": "success"}
    (outcome,) = read()
    assert outcome.status == "unreadable" and not outcome.created
    delivery = Delivery.objects.get()
    assert delivery.status == "unreadable" and reason in delivery.note
    assert reason in unreadable_record(delivery).last_error
    # The same document again is a duplicate of the parked record, not another one.
    post(client, shop, body, signature=sign(body))
    read()
    assert Record.objects.count() == 1
    assert Delivery.objects.order_by("-id").first().status == "duplicate"


def test_an_amount_the_rows_cannot_hold_only_once_multiplied_is_unreadable(client, shop):
    order = json.loads(raw("order_place_after.json"))
    item = order["data"]["order"]["items"][0]
    item.update(price="999999999999999", qty_ordered="999999999999999", row_total=None)
    body = json.dumps(order).encode()
    post(client, shop, body, signature=sign(body))
    read()
    assert "out of range" in Delivery.objects.get().note


@pytest.mark.parametrize(
    "body",
    [
        b"order=42&total=10",  # not JSON
        b"[1, 2, 3]",  # JSON, not an object
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser goes
        json.dumps({"something": "else"}).encode(),  # no shape we know
    ],
    ids=["not-json", "array", "deep", "unknown-shape"],
)
def test_any_signed_body_is_stored_and_a_body_we_cannot_read_is_parked(client, shop, settings, body):
    settings.CONNECTOR_WEBHOOK_MAX_BYTES = 1024 * 1024
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 200
    (outcome,) = read()
    assert outcome.status == "unreadable"
    record = unreadable_record(Delivery.objects.get())
    assert record.kind == "unknown"


@pytest.mark.parametrize("encode", [lambda t: b"\xef\xbb\xbf" + t.encode(), lambda t: t.encode("utf-16")])
def test_json_with_a_byte_order_mark_or_in_utf16_is_still_read(client, shop, encode):
    body = encode(raw("order_place_after.json").decode())
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 200
    read()
    assert Record.objects.get().commerce_number == "000000042"


# --- refusals ------------------------------------------------------------------------------------------


def test_bad_signature_is_401_and_only_counted(client, shop):
    body = raw("order_place_after.json")
    for _ in range(3):
        response = post(client, shop, body, signature=sign(body, "wrong-secret"))
        assert response.status_code == 401
    assert response.json()["error"] == "bad_signature" and "does not verify" in response.json()["message"]
    assert Delivery.objects.count() == 0 and Record.objects.count() == 0
    assert rejections_flush() == 3
    rejection = DeliveryRejection.objects.get()
    assert (rejection.reason, rejection.count, rejection.connection) == ("bad_signature", 3, shop)
    assert "HMAC does not match" in rejection.last_detail


def test_refused_requests_are_counted_in_memory_and_written_by_the_flush(client, shop, settings):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 60  # the connection and its keys come from the cache
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body, "wrong-secret"))  # loads the receiver
    with CaptureQueriesContext(db_connection) as queries:
        for _ in range(50):
            assert post(client, shop, body, signature=sign(body, "wrong-secret")).status_code == 401
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []  # a flood of bad signatures is not a flood of writes
    assert DeliveryRejection.objects.count() == 0
    assert rejections_flush() == 51
    assert DeliveryRejection.objects.get().count == 51
    assert rejections_flush() == 0


def test_the_refusal_counter_is_bounded(client, shop, monkeypatch):
    from commerce import rejections as counting

    monkeypatch.setattr(counting, "MAX_KEYS", 2)
    for reason in ("bad_signature", "too_large", "no_verifier", "not_json"):
        counting.rejection_count(connection_id=shop.pk, reason=reason)
    assert counting.rejections.pending() == 2 and counting.rejections.dropped == 2
    assert rejections_flush() == 2


def test_missing_signature_is_401_and_the_answer_names_no_header(client, db):
    conn = make_connection()
    add_hmac_key(conn, secret=SECRET, header_name="X-Acme-Private-Sig")
    response = post(client, conn, raw("order_place_after.json"))
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    assert "acme-private-sig" not in response.content.decode().lower()
    assert Delivery.objects.count() == 0
    rejections_flush()
    assert "missing X-Acme-Private-Sig header" in DeliveryRejection.objects.get().last_detail  # only the admin sees it


def test_connection_without_an_active_key_refuses_every_delivery(client, db):
    conn = make_connection()
    add_hmac_key(conn, secret=SECRET, active=False)
    body = raw("order_place_after.json")
    response = post(client, conn, body, signature=sign(body))
    assert response.status_code == 401 and response.json()["error"] == "no_verifier"
    rejections_flush()
    assert DeliveryRejection.objects.get().reason == "no_verifier"
    assert Delivery.objects.count() == 0


def test_unknown_and_disabled_connections_get_the_same_404(client, shop):
    body = raw("order_place_after.json")
    unknown = post(client, "no-such-shop", body, signature=sign(body))
    shop.enabled = False
    shop.save()
    disabled = post(client, shop, body, signature=sign(body))
    assert unknown.status_code == disabled.status_code == 404
    assert unknown.content == disabled.content and unknown.json()["error"] == "not_found"
    assert Delivery.objects.count() == 0
    rejections_flush()
    rejection = DeliveryRejection.objects.get()  # one row for the minute, the slug only as a detail
    assert rejection.connection is None and rejection.count == 2


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_wrong_method_is_405_json(client, shop, method):
    response = getattr(client, method)(f"/webhooks/commerce/{shop.slug}/")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_get_without_a_challenge_is_405(client, shop):
    response = client.get(f"/webhooks/commerce/{shop.slug}/")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_an_unsigned_body_is_401_whatever_it_holds(client, shop):
    for body in (b"order=42&total=10", b'{"challenge":"x"}', raw("order_place_after.json")):
        assert post(client, shop, body).status_code == 401
    assert Delivery.objects.count() == 0


def test_an_unsigned_deeply_nested_body_is_401_not_an_error(client, shop, io_shop, caplog):
    body = b"[" * 100_000 + b"]" * 100_000
    for conn in (shop, io_shop):
        with caplog.at_level(logging.DEBUG):
            response = post(client, conn, body, signature=sign(body, "forged"))
        assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert Delivery.objects.count() == 0


class ExplodingStream(io.BytesIO):
    def read(self, *args):
        raise AssertionError("the body must not be read")

    readline = read


def test_declared_body_over_the_limit_is_413_without_reading_it(settings, shop):
    settings.CONNECTOR_WEBHOOK_MAX_BYTES = 1024
    request = RequestFactory().generic("POST", f"/webhooks/commerce/{shop.slug}/", content_type="application/json")
    request.META["CONTENT_LENGTH"] = "5000000"
    request.META["wsgi.input"] = ExplodingStream()
    request._stream = ExplodingStream()
    response = commerce_webhook(request, shop.slug)
    assert response.status_code == 413 and json.loads(response.content)["error"] == "too_large"
    rejections_flush()
    assert DeliveryRejection.objects.get().reason == "too_large"


def test_chunked_body_over_the_limit_is_413_after_reading_at_most_limit_plus_one(settings, shop):
    settings.CONNECTOR_WEBHOOK_MAX_BYTES = 1024
    stream = io.BytesIO(b"x" * 100_000)
    request = RequestFactory().generic(
        "POST", f"/webhooks/commerce/{shop.slug}/", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked"
    )
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input"] = stream
    response = commerce_webhook(request, shop.slug)
    assert response.status_code == 413
    assert stream.tell() <= 1025


def test_body_over_the_limit_through_the_client_is_413(client, settings, shop):
    settings.CONNECTOR_WEBHOOK_MAX_BYTES = 100
    body = raw("order_place_after.json")
    response = post(client, shop, body, signature=sign(body))
    assert response.status_code == 413 and "100-byte limit" in response.json()["message"]
    assert Delivery.objects.count() == 0


# --- Adobe I/O Events: recipient, challenge ------------------------------------------------------------

RECIPIENT = "4ab33463139e4f6e9a5b1f1a2b3c4d5e"  # the fixture's recipient_client_id
PROVIDER = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"  # the fixture's source is urn:uuid:<this>


@pytest.fixture
def io_shop(db, rsa_key):
    conn = make_connection()
    WebhookKey.objects.create(
        connection=conn, scheme="io_events", public_key=public_pem(rsa_key), label="io", recipient_client_id=RECIPIENT
    )
    return conn


def io_headers(key, body: bytes) -> dict[str, str]:
    signature = base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    return {"x-adobe-digital-signature-1": "bm9wZQ==", "x-adobe-digital-signature-2": signature}


def io_event(**fields) -> bytes:
    event = json.loads(raw("io_events_order_place_after.json"))
    for name, value in fields.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return json.dumps(event).encode()


def test_an_io_event_for_another_recipient_is_refused_and_counted(client, io_shop, rsa_key):
    # Adobe signs every customer's events with the same keys: this one is genuinely signed, but it is addressed
    # to somebody else's I/O project.
    forged = io_event(recipient_client_id="someone-elses-client-id", data={"value": {"grand_total": "99999"}})
    response = post(client, io_shop, forged, headers=io_headers(rsa_key, forged))
    assert response.status_code == 401 and response.json()["error"] == "wrong_recipient"
    assert Delivery.objects.count() == 0 and Record.objects.count() == 0
    rejections_flush()
    rejection = DeliveryRejection.objects.get()
    assert rejection.reason == "wrong_recipient" and "someone-elses-client-id" in rejection.last_detail


@pytest.mark.parametrize(
    "fields, accepted",
    [
        ({"recipientclientid": RECIPIENT, "recipient_client_id": RECIPIENT}, True),  # both, as Adobe sends now
        ({"recipientclientid": RECIPIENT, "recipient_client_id": None}, True),  # after the old name is gone
        ({"recipientclientid": None, "recipient_client_id": RECIPIENT}, True),  # before the new name
        ({"recipientclientid": "other", "recipient_client_id": RECIPIENT}, False),  # the new name is read first
        ({"recipientclientid": None, "recipient_client_id": None}, False),  # no recipient: not shown to be ours
        ({"recipientclientid": 42}, False),
    ],
)
def test_the_recipient_is_read_from_the_new_field_first_and_the_old_one_accepted(
    client, io_shop, rsa_key, fields, accepted
):
    body = io_event(**fields)
    response = post(client, io_shop, body, headers=io_headers(rsa_key, body))
    assert response.status_code == (200 if accepted else 401)
    assert Delivery.objects.count() == (1 if accepted else 0)


def test_a_key_with_a_provider_id_also_checks_the_events_source(client, io_shop, rsa_key):
    WebhookKey.objects.filter(connection=io_shop).update(provider_id=PROVIDER)
    ours = io_event()
    assert post(client, io_shop, ours, headers=io_headers(rsa_key, ours)).status_code == 200
    other = io_event(source="urn:uuid:11111111-2222-3333-4444-555555555555")
    response = post(client, io_shop, other, headers=io_headers(rsa_key, other))
    assert response.status_code == 401 and response.json()["error"] == "wrong_recipient"


def test_an_io_events_key_without_a_recipient_verifies_nothing(client, db, rsa_key):
    conn = make_connection()
    WebhookKey.objects.create(connection=conn, scheme="io_events", public_key=public_pem(rsa_key), label="io")
    body = io_event()
    response = post(client, conn, body, headers=io_headers(rsa_key, body))
    assert response.status_code == 401 and response.json()["error"] == "no_verifier"


def test_io_events_get_challenge_is_echoed(client, io_shop):
    response = client.get(f"/webhooks/commerce/{io_shop.slug}/", {"challenge": "8ec8d794-e0ab-42df"})
    assert response.status_code == 200 and response.json() == {"challenge": "8ec8d794-e0ab-42df"}
    assert response["Content-Type"] == "application/json"
    assert Delivery.objects.count() == 0


def test_a_challenge_that_is_not_a_token_is_not_echoed(client, io_shop):
    response = client.get(f"/webhooks/commerce/{io_shop.slug}/", {"challenge": "<script>alert(1)</script>"})
    assert response.status_code == 405


def test_the_post_registration_step_is_acknowledged_for_a_person_to_open(client, io_shop, caplog):
    url = "https://csm.adobe.io/csm/registrations/validate?id=abc&challenge=def"
    with caplog.at_level(logging.WARNING, logger="commerce.webhooks"):
        response = post(client, io_shop, json.dumps({"validationUrl": url}).encode())
    assert response.status_code == 200 and response.json() == {"op": "success"}
    assert url in caplog.text
    assert Delivery.objects.count() == 0 and Record.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"challenge":"c-123"}',  # a response shape, never a request: I/O Events POSTs validationUrl
        b'{"validationUrl":"https://evil.example/csm"}',
        b'{"validationUrl":"https://csm.adobe.io/x","eventName":"observer.sales_order_place_after"}',
        json.dumps({"validationUrl": "https://csm.adobe.io/" + "x" * 2000}).encode(),  # not small
    ],
)
def test_only_exactly_a_registration_step_is_answered_unsigned(client, io_shop, body):
    assert post(client, io_shop, body).status_code == 401
    assert Delivery.objects.count() == 0


def test_challenge_is_not_answered_for_a_connection_without_io_events(client, shop):
    assert client.get(f"/webhooks/commerce/{shop.slug}/", {"challenge": "x"}).status_code == 405
    url = json.dumps({"validationUrl": "https://csm.adobe.io/csm/registrations/validate?id=a"}).encode()
    assert post(client, shop, url).status_code == 401


def test_challenge_on_an_unknown_connection_is_404(client, db):
    assert client.get("/webhooks/commerce/nobody/", {"challenge": "x"}).status_code == 404


# --- broker down at receipt ----------------------------------------------------------------------------


@pytest.fixture
def broker_at_a_closed_port():
    from config.celery import app

    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/5"  # nothing listens on the discard port
    app._pool = None
    app.amqp._producer_pool = None
    yield
    wakeups_flush()
    app.conf.broker_url = saved
    app._pool = None
    app.amqp._producer_pool = None
    waker.skip_until = 0.0
    delivery_waker.skip_until = 0.0


def test_broker_down_at_receipt_the_relay_has_the_delivery_read_later(
    client, shop, settings, broker_at_a_closed_port, django_capture_on_commit_callbacks, caplog
):
    body = raw("order_place_after.json")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, shop, body, signature=sign(body))
    assert len(callbacks) == 1  # the wake-up was attempted, and its failure did not reach the answer
    wakeups_flush()
    assert "Broker unavailable" in caplog.text
    assert response.status_code == 200 and response.json() == {"op": "success"}
    delivery = Delivery.objects.get()
    assert delivery.status == "received"
    sent = []
    send = mock.patch(
        "connector.wakeups.current_app.send_task", side_effect=lambda name, args, **kw: sent.append((name, args[0]))
    )
    settings.CONNECTOR_DELIVERY_GRACE_SECONDS = 0
    with send:
        assert relay_unread_deliveries(limit=10) == 1
        assert relay_unread_deliveries(limit=10) == 0  # once per window until a worker picks it up
    assert sent == [("commerce.delivery_record", [delivery.pk])]
    with mock.patch("sync.tasks.records_wake"):
        assert read_deliveries([delivery.pk]) == 1
    record = Record.objects.get()
    assert record.state == Record.State.RECEIVED and record.attempts == 0
    woken = []
    with mock.patch(
        "connector.wakeups.current_app.send_task", side_effect=lambda name, args, **kw: woken.append(args[0])
    ):
        assert relay_due(limit=10) == 1
    assert woken == [record.pk]


def test_the_relay_leaves_a_fresh_delivery_to_its_wake_up(client, shop, settings):
    settings.CONNECTOR_DELIVERY_GRACE_SECONDS = 60
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body))
    with mock.patch("sync.relay.deliveries_wake") as wake:
        assert relay_unread_deliveries(limit=10) == 0
    wake.assert_called_once_with(delivery_ids=[])


def test_after_a_failed_wake_up_the_next_ones_are_skipped_for_the_relay(
    client, shop, broker_at_a_closed_port, django_capture_on_commit_callbacks
):
    first = raw("order_place_after.json")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, shop, first, signature=sign(first))
    wakeups_flush()
    assert delivery_waker.skip_until > 0  # the publish was slow: the broker is presumed down for a few seconds
    second = raw("invoice_save_after.json")
    with mock.patch("connector.wakeups.deliveries_wake") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, shop, second, signature=sign(second)).status_code == 200
        wakeups_flush()
    wake.assert_not_called()
    assert Delivery.objects.count() == 2


def test_wake_ups_given_while_the_thread_lingers_go_out_as_one_message_without_waking_it():
    lingering = _Waker()
    lingering.LINGER_SECONDS = 1.0
    with mock.patch("connector.wakeups.records_wake") as wake:
        lingering.wake(1)
        while lingering._queue.qsize():  # the thread has taken the first one
            time.sleep(0.001)
        time.sleep(0.1)  # ... and lingers
        # Nobody waits on the queue meanwhile: a put hands nothing over to another thread.
        assert not lingering._queue.not_empty._waiters  # type: ignore[attr-defined]
        lingering.wake(2)
        lingering.wake(3)
        lingering.flush()
    wake.assert_called_once_with(record_ids=[1, 2, 3])


def _a_mixed_batch(client, shop) -> dict[str, bytes]:
    before = raw("order_plugin_place_before.json")
    saved = json.loads(before)["order"] | {"entity_id": "43"}
    bodies = {
        "new": order_body(5001),
        "again": order_body(5001),  # the same document twice in one batch
        "known": order_body(5002),
        "invoice": raw("invoice_save_after.json"),
        "ignored": json.dumps({"eventName": "observer.catalog_product_save_after", "data": {}}).encode(),
        "unreadable": order_body(5003, grand_total="1e30"),
        "saved": json.dumps({"eventName": "observer.sales_order_save_commit_after", "data": {"order": saved}}).encode(),
    }
    for body in (bodies["known"], before):  # read before the batch arrives
        post(client, shop, body, signature=sign(body))
    read()
    for body in bodies.values():
        post(client, shop, body, signature=sign(body))
    return bodies


@pytest.mark.parametrize("concurrent_insert", [False, True], ids=["at-once", "one-by-one"])
def test_a_batch_of_deliveries_is_read_as_one_by_one_reading_would(client, shop, concurrent_insert):
    from commerce.deliveries import deliveries_unread_record
    from connector import records

    _a_mixed_batch(client, shop)
    with mock.patch(
        "commerce.deliveries.record_accept_many",
        side_effect=IntegrityError("another worker was first") if concurrent_insert else records.record_accept_many,
    ):
        outcomes = deliveries_unread_record(limit=100)
    assert [(o.status, o.created) for o in outcomes] == [
        ("accepted", True),
        ("duplicate", False),
        ("duplicate", False),
        ("accepted", True),
        ("ignored", False),
        ("unreadable", False),
        ("duplicate", False),
    ]
    keys = sorted(Record.objects.values_list("commerce_entity_id", flat=True))
    assert [key for key in keys if not key.startswith("!")] == ["3", "43", "5001", "5002"]
    assert Record.objects.filter(commerce_entity_id__startswith="!").count() == 1
    assert Record.objects.count() == 5  # the before-hook order took its entity id: still one record for it
    received = AuditEvent.objects.filter(action="record.received")
    assert received.count() == 4 and set(received.values_list("actor", flat=True)) == {"system:webhook:hmac"}
    assert AuditEvent.objects.filter(action="record.duplicate").count() == 3
    duplicates = Delivery.objects.filter(status="duplicate")
    assert set(duplicates.values_list("body", flat=True)) == {b""} and all(d.body_sha256 for d in duplicates)
    assert not Delivery.objects.filter(status="received").exists()


def test_a_records_wake_up_goes_behind_the_deliveries_waiting_to_be_read():
    from connector.wakeups import deliveries_wake, records_wake

    sent = []
    with mock.patch(
        "connector.wakeups.current_app.send_task",
        side_effect=lambda name, args, **kw: sent.append((name, kw.get("priority"))),
    ):
        assert records_wake(record_ids=[1]) and records_wake(record_ids=[1, 2])
        assert deliveries_wake(delivery_ids=[3])
    assert sent == [("connector.process_record", 6), ("connector.wake_records", 6), ("commerce.delivery_record", None)]


# --- admin ---------------------------------------------------------------------------------------------


def test_delivery_admin_is_read_only_and_pretty_prints_the_body(client, shop, admin_user):
    body = raw("order_place_after.json")
    post(client, shop, body, signature=sign(body), request_id="req-admin")
    post(client, shop, body, signature=sign(body), request_id="req-admin-again")
    read()
    delivery, duplicate = Delivery.objects.order_by("id")
    client.force_login(admin_user)
    page = client.get(f"/admin/commerce/delivery/{delivery.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;eventName&quot;: &quot;observer.sales_order_save_commit_after&quot;" in html  # indented JSON
    assert sign(body) not in html  # the signature header is shown redacted
    assert 'name="_save"' not in html
    assert client.post(f"/admin/commerce/delivery/{delivery.pk}/change/", {}).status_code == 403
    assert client.get("/admin/commerce/delivery/add/").status_code == 403
    listing = client.get("/admin/commerce/delivery/", {"q": "req-admin"})
    assert listing.status_code == 200 and "observer.sales_order_save_commit_after" in listing.content.decode()
    page = client.get(f"/admin/commerce/delivery/{duplicate.pk}/change/").content.decode()
    assert "a duplicate keeps its headers" in page and hashlib.sha256(body).hexdigest() in page


def test_an_unreadable_record_is_listed_among_records_needing_review_with_its_reason(client, shop, admin_user):
    order = json.loads(raw("order_place_after.json"))
    order["data"]["order"]["grand_total"] = "1e30"
    body = json.dumps(order).encode()
    post(client, shop, body, signature=sign(body))
    read()
    client.force_login(admin_user)
    listing = client.get("/admin/connector/record/", {"state": "needs_review"}).content.decode()
    assert "grand_total is out of range" in listing
