"""Signature schemes: HMAC (hex/base64, prefix, several secrets), Adobe Commerce RSA, Adobe I/O Events."""

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commerce.verifiers import keyring_load, receiver_cache_clear, receiver_get
from connector.models import WebhookKey
from tests.factories import add_hmac_key, make_connection

BODY = b'{"eventName":"observer.sales_order_place_after","data":{"order":{"entity_id":"1","url":"a\\/b"}}}'


@pytest.fixture(scope="module")
def rsa_keys():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def pem(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def adobe_signature(private_key, body: bytes) -> str:
    """What Commerce sends: base64(openssl_sign(base64_encode(json), sha256)) (Commerce's webhook signing)."""
    return base64.b64encode(private_key.sign(base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())).decode()


def io_signature(private_key, body: bytes) -> str:
    return base64.b64encode(private_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def meta(**headers: str) -> dict:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def _fresh_cache():
    receiver_cache_clear()
    yield
    receiver_cache_clear()


@pytest.mark.django_db
def test_hmac_hex_verifies_and_names_the_key():
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret", label="primary")
    result = keyring_load(conn.pk).verify(BODY, meta(x_commerce_signature=hex_hmac("s3cret", BODY)))
    assert result.ok and result.summary == "hmac:primary"


@pytest.mark.django_db
def test_hmac_wrong_secret_or_tampered_body_fails():
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret")
    ring = keyring_load(conn.pk)
    assert not ring.verify(BODY, meta(x_commerce_signature=hex_hmac("other", BODY))).ok
    assert not ring.verify(BODY + b" ", meta(x_commerce_signature=hex_hmac("s3cret", BODY))).ok
    assert "missing" in ring.verify(BODY, {}).reason


@pytest.mark.django_db
def test_hmac_base64_with_prefix_in_a_custom_header():
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret", header_name="X-Magento-Webhook-Signature", encoding="base64", prefix="sha256=")
    digest = base64.b64encode(hmac.new(b"s3cret", BODY, hashlib.sha256).digest()).decode()
    ring = keyring_load(conn.pk)
    assert ring.verify(BODY, meta(x_magento_webhook_signature=f"sha256={digest}")).ok
    assert "prefix" in ring.verify(BODY, meta(x_magento_webhook_signature=digest)).reason


@pytest.mark.django_db
def test_hmac_in_the_wrong_encoding_is_refused():
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret", encoding="hex")
    as_base64 = base64.b64encode(hmac.new(b"s3cret", BODY, hashlib.sha256).digest()).decode()
    assert not keyring_load(conn.pk).verify(BODY, meta(x_commerce_signature=as_base64)).ok
    conn2 = make_connection()
    add_hmac_key(conn2, secret="s3cret", encoding="base64")
    result = keyring_load(conn2.pk).verify(BODY, meta(x_commerce_signature=hex_hmac("s3cret", BODY) + "!"))
    assert not result.ok and "not base64" in result.reason


@pytest.mark.django_db
def test_hmac_rotation_accepts_old_and_new_secret_until_the_old_one_is_deactivated():
    conn = make_connection()
    old = add_hmac_key(conn, secret="old-secret", label="2026-10")
    add_hmac_key(conn, secret="new-secret", label="2026-11")
    ring = keyring_load(conn.pk)
    assert ring.verify(BODY, meta(x_commerce_signature=hex_hmac("old-secret", BODY))).key_label == "2026-10"
    assert ring.verify(BODY, meta(x_commerce_signature=hex_hmac("new-secret", BODY))).key_label == "2026-11"
    WebhookKey.objects.filter(pk=old.pk).update(active=False)
    ring = keyring_load(conn.pk)
    assert not ring.verify(BODY, meta(x_commerce_signature=hex_hmac("old-secret", BODY))).ok
    assert ring.verify(BODY, meta(x_commerce_signature=hex_hmac("new-secret", BODY))).ok


@pytest.mark.django_db
def test_adobe_rsa_signs_base64_of_the_raw_body(rsa_keys):
    conn = make_connection()
    WebhookKey.objects.create(connection=conn, scheme="adobe_rsa", public_key=pem(rsa_keys[0]), label="admin")
    ring = keyring_load(conn.pk)
    good = adobe_signature(rsa_keys[0], BODY)
    assert ring.verify(BODY, meta(x_adobe_commerce_webhook_signature=good)).summary == "adobe_rsa:admin"
    # signing the raw body itself (not its base64) is not what Commerce does, and must not verify
    raw_signed = io_signature(rsa_keys[0], BODY)
    assert not ring.verify(BODY, meta(x_adobe_commerce_webhook_signature=raw_signed)).ok
    # re-serialised JSON (PHP escapes "/" as "\/") changes the bytes: verification is over the raw body only
    assert not ring.verify(BODY.replace(b"\\/", b"/"), meta(x_adobe_commerce_webhook_signature=good)).ok


@pytest.mark.django_db
def test_adobe_rsa_bad_key_bad_encoding_and_rotation(rsa_keys):
    conn = make_connection()
    first = WebhookKey.objects.create(connection=conn, scheme="adobe_rsa", public_key=pem(rsa_keys[0]), label="k1")
    ring = keyring_load(conn.pk)
    other = adobe_signature(rsa_keys[1], BODY)
    assert not ring.verify(BODY, meta(x_adobe_commerce_webhook_signature=other)).ok
    result = ring.verify(BODY, meta(x_adobe_commerce_webhook_signature="%%%not-base64"))
    assert not result.ok and "not base64" in result.reason
    # "Regenerate key pair" in the Commerce admin: add the new public key, retire the old one
    WebhookKey.objects.create(connection=conn, scheme="adobe_rsa", public_key=pem(rsa_keys[1]), label="k2")
    first.active = False
    first.save()
    ring = keyring_load(conn.pk)
    assert ring.verify(BODY, meta(x_adobe_commerce_webhook_signature=other)).key_label == "k2"
    assert not ring.verify(BODY, meta(x_adobe_commerce_webhook_signature=adobe_signature(rsa_keys[0], BODY))).ok


IO_BODY = b'{"specversion":"1.0","id":"e-1","source":"urn:uuid:prov-1","recipientclientid":"client-a","data":{}}'


@pytest.mark.django_db
def test_io_events_either_signature_may_verify(rsa_keys):
    conn = make_connection()
    WebhookKey.objects.create(
        connection=conn, scheme="io_events", public_key=pem(rsa_keys[1]), label="io", recipient_client_id="client-a"
    )
    ring = keyring_load(conn.pk)
    wrong = io_signature(rsa_keys[0], IO_BODY)
    right = io_signature(rsa_keys[1], IO_BODY)
    headers = {"x-adobe-digital-signature-1": wrong, "x-adobe-digital-signature-2": right}
    assert ring.verify(IO_BODY, meta(**headers)).summary == "io_events:io"
    assert not ring.verify(IO_BODY, meta(**{"x-adobe-digital-signature-1": wrong})).ok
    assert not ring.verify(IO_BODY + b"\n", meta(**headers)).ok


@pytest.mark.django_db
def test_io_events_keys_of_several_registrations_each_take_their_own_events(rsa_keys):
    # Adobe's key pair is the same for every registration: what tells them apart is the recipient.
    conn = make_connection()
    for label, recipient in (("a", "client-a"), ("b", "client-b")):
        WebhookKey.objects.create(
            connection=conn, scheme="io_events", public_key=pem(rsa_keys[1]), label=label, recipient_client_id=recipient
        )
    ring = keyring_load(conn.pk)
    signed = {"x-adobe-digital-signature-1": io_signature(rsa_keys[1], IO_BODY)}
    assert ring.verify(IO_BODY, meta(**signed)).key_label == "a"
    other = IO_BODY.replace(b"client-a", b"client-c")
    result = ring.verify(other, meta(**{"x-adobe-digital-signature-1": io_signature(rsa_keys[1], other)}))
    assert not result.ok and result.refusal == "wrong_recipient" and "client-c" in result.reason
    forged = ring.verify(other, meta(**{"x-adobe-digital-signature-1": io_signature(rsa_keys[0], other)}))
    assert not forged.ok and forged.refusal == "bad_signature"  # not Adobe's signature: not a recipient question


@pytest.mark.django_db
def test_io_events_key_with_a_provider_checks_the_source(rsa_keys):
    conn = make_connection()
    WebhookKey.objects.create(
        connection=conn,
        scheme="io_events",
        public_key=pem(rsa_keys[1]),
        label="io",
        recipient_client_id="client-a",
        provider_id="prov-1",
    )
    ring = keyring_load(conn.pk)
    assert ring.verify(IO_BODY, meta(**{"x-adobe-digital-signature-1": io_signature(rsa_keys[1], IO_BODY)})).ok
    moved = IO_BODY.replace(b"prov-1", b"prov-2")
    result = ring.verify(moved, meta(**{"x-adobe-digital-signature-1": io_signature(rsa_keys[1], moved)}))
    assert not result.ok and result.refusal == "wrong_recipient"


def test_an_io_events_key_needs_its_recipient_client_id(rsa_keys):
    from django.core.exceptions import ValidationError

    key = WebhookKey(scheme="io_events", public_key=pem(rsa_keys[1]), label="io")
    with pytest.raises(ValidationError, match="recipient client id"):
        key.clean()
    key.recipient_client_id = "client-a"
    key.clean()


@pytest.mark.django_db
def test_no_active_key_refuses_everything():
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret", active=False)
    ring = keyring_load(conn.pk)
    result = ring.verify(BODY, meta(x_commerce_signature=hex_hmac("s3cret", BODY)))
    assert not ring and not result.ok and "no active verification key" in result.reason


@pytest.mark.django_db
def test_a_broken_pem_is_skipped_not_fatal(rsa_keys):
    conn = make_connection()
    WebhookKey.objects.create(
        connection=conn, scheme="adobe_rsa", public_key="-----BEGIN PUBLIC KEY-----\nxx", label="bad"
    )
    add_hmac_key(conn, secret="s3cret")
    ring = keyring_load(conn.pk)
    assert ring.broken == ["bad"]
    assert ring.verify(BODY, meta(x_commerce_signature=hex_hmac("s3cret", BODY))).ok


@pytest.mark.django_db
def test_receiver_is_cached_so_requests_do_not_reload_keys(settings, django_assert_num_queries):
    settings.CONNECTOR_WEBHOOK_CACHE_SECONDS = 60
    conn = make_connection()
    add_hmac_key(conn, secret="s3cret")
    with django_assert_num_queries(2):  # the connection, its keys
        first = receiver_get(conn.slug)
    with django_assert_num_queries(0):
        again = receiver_get(conn.slug)
    assert again is first
    assert receiver_get("no-such-shop") is None
    with django_assert_num_queries(0):
        assert receiver_get("no-such-shop") is None


def test_verifier_reprs_never_show_the_secret():
    from commerce.verifiers import HmacVerifier

    verifier = HmacVerifier(label="x", secret="very-secret-value", header="X-Sig", encoding="hex", prefix="")
    assert "very-secret-value" not in repr(verifier)
