import io
import json
import logging
import re
import sys
from urllib.parse import quote

import pytest
import responses
from django.core.cache import cache

from commerce.client import CommerceClient
from connector.connection_documents import connection_apply
from connector.models import Connection
from core.logging import JsonFormatter, RedactingFilter
from core.redaction import (
    MASK,
    excerpt,
    is_secret_name,
    redact,
    redact_text,
    redact_url,
    scrub_secrets,
    secrets_forget,
    secrets_register,
)
from fusion.client import FusionClient
from tests.connector.secrets import SECRET_VALUES, assert_no_secret_in
from tests.factories import make_connection


def test_redact_masks_secret_headers_and_keeps_the_rest():
    headers = {
        "Authorization": "Bearer eyJhbGciOi.secret-token",
        "Cookie": "sessionid=abc123",
        "X-Api-Key": "ims-client-id-as-key",
        "x-adobe-commerce-webhook-signature": "c2lnbmF0dXJl",
        "Content-Type": "application/json",
        "REST-Framework-Version": "4",
    }
    clean = redact(headers)
    assert clean["Authorization"] == clean["Cookie"] == clean["X-Api-Key"] == MASK
    assert clean["x-adobe-commerce-webhook-signature"] == MASK
    assert clean["Content-Type"] == "application/json" and clean["REST-Framework-Version"] == "4"
    assert headers["Authorization"].startswith("Bearer ")  # the original is untouched


def test_redact_walks_nested_dicts_and_lists():
    payload = {
        "client_id": "fusion-client",
        "client_secret": "cs-1",
        "grant": {"password": "pw-1", "username": "integration", "refresh_token": "rt-1"},
        "items": [{"access_token": "at-1", "TransactionNumber": "MAG-000000123"}],
        "public_key": "-----BEGIN PUBLIC KEY-----",
        "key_id": "kid-7",
        "empty_secret": "",
    }
    clean = redact(payload)
    assert_no_secret_in(json.dumps(clean), ("cs-1", "pw-1", "rt-1", "at-1"))
    assert clean["client_id"] == "fusion-client"
    assert clean["grant"]["username"] == "integration"
    assert clean["items"][0]["TransactionNumber"] == "MAG-000000123"
    assert clean["public_key"].startswith("-----BEGIN") and clean["key_id"] == "kid-7"
    assert clean["empty_secret"] == ""  # nothing to hide; shows the field was empty


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://user:pw@shop.example.com/rest/V1/orders", "https://***@shop.example.com/rest/V1/orders"),
        (
            "https://ims-na1.adobelogin.com/ims/token/v3?client_secret=abc&grant_type=client_credentials",
            "https://ims-na1.adobelogin.com/ims/token/v3?client_secret=***&grant_type=client_credentials",
        ),
        (
            "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05/receivablesInvoices?limit=1",
            "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05/receivablesInvoices?limit=1",
        ),
    ],
)
def test_redact_url_drops_userinfo_and_secret_query_parameters(url, expected):
    assert redact_url(url) == expected
    assert redact({"url": url})["url"] == expected


def test_redact_text_masks_credentials_inside_free_text():
    text = (
        "POST failed: Authorization: Basic dXNlcjpwYXNz; body client_secret=cs-2&grant_type=client_credentials; "
        'json {"access_token": "at-2", "password":"pw-2"}'
    )
    clean = redact_text(text)
    assert_no_secret_in(clean, ("dXNlcjpwYXNz", "cs-2", "at-2", "pw-2"))
    assert "grant_type=client_credentials" in clean


def test_redact_text_masks_credentials_of_urls_written_in_text():
    clean = redact_text(
        "retrying https://client:cs-4@idcs-1.identity.oraclecloud.com/x and redis://:pw-4@127.0.0.1:6379/0"
    )
    assert_no_secret_in(clean, ("cs-4", "pw-4"))
    assert "https://***@idcs-1.identity.oraclecloud.com/x" in clean
    assert redact_text("mail ops@example.com about https://shop.example.com/a@b") == (
        "mail ops@example.com about https://shop.example.com/a@b"
    )


def test_excerpt_redacts_and_truncates():
    body = b'{"access_token": "at-3", "detail": "' + b"x" * 5000 + b'"}'
    clean = excerpt(body, limit=100)
    assert "at-3" not in clean
    assert clean.endswith("more characters]") and len(clean) < 200


def test_secret_names_are_recognised_without_catching_ordinary_fields():
    for name in ("password", "client_secret", "Authorization", "x-api-key", "api_key", "oauth_signature", "token"):
        assert is_secret_name(name), name
    for name in ("public_key", "key_id", "TransactionNumber", "grand_total", "monkey", "keyboard"):
        assert not is_secret_name(name), name


@pytest.fixture
def redacting_log():
    """A real logger wired as in settings.LOGGING: the handler redacts, then formats as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_connection_secrets_never_reach_a_log_line(redacting_log):
    logger, stream = redacting_log
    connection = make_connection(**SECRET_VALUES)
    token_url = connection.fusion_token_url.replace("https://", f"https://client:{connection.fusion_client_secret}@")

    logger.info("Connection %r", connection)
    logger.info("token request to %s", token_url)
    logger.info("request headers %s", {"Authorization": f"Bearer {connection.commerce_access_token}"})
    logger.warning(
        "OAuth refused",
        extra={"request": {"client_secret": connection.commerce_client_secret, "password": connection.fusion_password}},
    )
    logger.info("form body client_secret=%s&grant_type=client_credentials", connection.fusion_client_secret)
    try:
        raise RuntimeError(f"oauth_signature={connection.commerce_consumer_secret} refused")
    except RuntimeError:
        logger.exception("Commerce call failed (secret=%s)", connection.commerce_access_token_secret)

    output = stream.getvalue()
    assert len(output.splitlines()) == 6
    assert_no_secret_in(output, SECRET_VALUES.values())


@pytest.mark.django_db
@responses.activate
def test_apply_connection_logs_no_secret(caplog):
    caplog.set_level(logging.DEBUG)
    cache.clear()  # no token left from an earlier run: the applied secrets are sent and their use logged
    applied = connection_apply(
        document={
            "slug": "logged",
            "name": "Logged",
            "fusion_base_url": "https://acme.fa.us2.oraclecloud.com",
            "fusion_token_url": "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token",
            "fusion_client_id": "c",
            "commerce_base_url": "https://shop.example.com",
            "commerce_consumer_key": "k",
            **SECRET_VALUES,
        }
    )
    assert applied.created and applied.connection.fusion_client_secret == SECRET_VALUES["fusion_client_secret"]
    # The applied connection at work: a Fusion token fetched with its secret and a read, a signed Commerce read.
    connection = Connection.objects.get(slug="logged")
    responses.post(connection.fusion_token_url, json={"access_token": "issued-token", "expires_in": 3600})
    responses.get(re.compile(r"https://acme\.fa\.us2\.oraclecloud\.com/.*"), json={"items": []})
    responses.get(re.compile(r"https://shop\.example\.com/rest/.*"), json={"entity_id": 7})
    FusionClient.for_connection(connection).get("receivablesInvoices", params={"limit": 1})
    CommerceClient.for_connection(connection).get("orders/7")

    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Fetched a new Fusion access token") for m in logged), logged
    assert any(m.startswith("Fusion GET ") and "HTTP 200" in m for m in logged), logged
    assert any(m.startswith("Commerce GET ") and "HTTP 200" in m for m in logged), logged
    assert_no_secret_in("\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records), SECRET_VALUES.values())


def test_prose_naming_an_auth_scheme_stays_readable_while_credentials_are_masked():
    from core.redaction import redact_text

    assert redact_text("Commerce refused the OAuth 1.0a signature") == "Commerce refused the OAuth 1.0a signature"
    assert redact_text("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig") == "Authorization: Bearer ***"
    assert "dXNlcjpwYXNzd29yZA" not in redact_text("Basic dXNlcjpwYXNzd29yZA==")


# --- known secret values ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_registry():
    secrets_forget()
    yield
    secrets_forget()


@pytest.mark.usefixtures("fresh_registry")
def test_the_filter_masks_registered_values_and_their_url_encoded_forms():
    secret = "s3cret/with+odd chars=="
    secrets_register([secret, "short", None, ""])
    record = logging.makeLogRecord(
        {
            "msg": "a %s b %s c %s d",
            "args": (secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")),
            "detail": {"nested": [f"x{secret}y"]},
        }
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == f"a {MASK} b {MASK} c {MASK} d"
    assert record.detail == {"nested": [f"x{MASK}y"]}
    assert scrub_secrets("short stays") == "short stays"  # too short to register without masking words


@pytest.mark.usefixtures("fresh_registry")
def test_the_filter_masks_registered_values_in_a_logged_traceback():
    secrets_register(["tb-secret-0a1b2c3d"])
    try:
        raise RuntimeError("refused tb-secret-0a1b2c3d")
    except RuntimeError:
        record = logging.getLogger("tests").makeRecord("tests", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "tb-secret-0a1b2c3d" not in formatted and "RuntimeError" in formatted


@pytest.mark.usefixtures("fresh_registry")
def test_the_registry_is_bounded_and_forgets_the_oldest():
    from core import redaction

    values = [f"bounded-secret-{i:05d}" for i in range(redaction.SECRET_REGISTRY_SIZE + 10)]
    secrets_register(values)
    assert scrub_secrets(values[0]) == values[0]
    assert scrub_secrets(values[-1]) == MASK
