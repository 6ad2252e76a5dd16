"""send_test_webhook: a realistic document signed with the connection's HMAC key, which the door accepts as it
accepts Commerce's, and which it refuses once a byte of the body changes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command

from commerce.models import Delivery
from commerce.payloads import document_from_entity
from commerce.samples import sample_body, signature_headers, signing_key
from commerce.verifiers import build_verifier
from tests.factories import add_hmac_key, make_connection

SECRET = "whsec-demo-0123456789"


def _send(*args: str) -> str:
    out = StringIO()
    call_command("send_test_webhook", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def connection(db):
    conn = make_connection()
    add_hmac_key(conn, secret=SECRET, prefix="sha256=")
    return conn


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["order", "invoice", "creditmemo"])
def test_a_sample_webhook_is_accepted_by_the_door_and_stored(connection, live_server, kind):
    url = f"{live_server.url}/webhooks/commerce/{connection.slug}/"
    output = _send(connection.slug, "--order", "501", "--kind", kind, "--url", url)
    assert '200 {"op":"success"}' in output
    delivery = Delivery.objects.get(connection=connection)
    assert delivery.status in (Delivery.Status.RECEIVED, Delivery.Status.ACCEPTED)
    assert SECRET not in output


@pytest.mark.django_db(transaction=True)
def test_the_door_refuses_the_same_signature_on_a_tampered_body(connection, live_server):
    url = f"{live_server.url}/webhooks/commerce/{connection.slug}/"
    body = sample_body("order", 502)
    headers = {"Content-Type": "application/json", **signature_headers(signing_key(connection), body)}
    tampered = body.replace(b'"grand_total":"', b'"grand_total":"1')
    assert tampered != body
    refused = requests.post(url, data=tampered, headers=headers, timeout=30)
    assert refused.status_code == 401
    assert not Delivery.objects.exists()
    accepted = requests.post(url, data=body, headers=headers, timeout=30)
    assert accepted.status_code == 200
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_the_signature_is_what_the_key_verifies(db, encoding):
    conn = make_connection()
    key = add_hmac_key(conn, secret=SECRET, encoding=encoding, header_name="X-Shop-Signature", prefix="v1=")
    body = sample_body("invoice", 7)
    ((name, value),) = signature_headers(key, body).items()
    assert name == "X-Shop-Signature" and value.startswith("v1=")
    meta = {"HTTP_X_SHOP_SIGNATURE": value}
    assert build_verifier(key).check(body, meta) == ""
    assert build_verifier(key).check(body + b" ", meta) == "HMAC does not match"


@pytest.mark.parametrize("kind", ["order", "invoice", "creditmemo"])
def test_sample_documents_read_as_documents_whose_lines_add_up(kind):
    payload = json.loads(sample_body(kind, 9))
    entity = payload["data"][kind]
    document = document_from_entity(kind, entity)
    lines = sum(line.row_total + line.tax for line in document.lines)
    assert lines + document.shipping_amount == document.grand_total
    assert document.increment_id == "000000009"


def test_an_unknown_slug_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connection has the slug 'nope'"):
        _send("nope", "--order", "1")


def test_a_connection_without_an_hmac_key_is_a_clear_error(db):
    conn = make_connection()
    with pytest.raises(CommandError, match="has no active HMAC webhook key"):
        _send(conn.slug, "--order", "1")


def test_an_unknown_sku_is_a_clear_error(connection):
    with pytest.raises(CommandError, match="Unknown SKU 'NOPE'"):
        _send(connection.slug, "--order", "1", "--sku", "NOPE:2")


def test_an_unreachable_connector_is_a_clear_error(connection):
    with pytest.raises(CommandError, match="Could not reach http://127.0.0.1:9/"):
        _send(connection.slug, "--order", "1", "--url", "http://127.0.0.1:9/")
