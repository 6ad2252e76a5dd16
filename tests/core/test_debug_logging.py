"""At LOG_LEVEL=DEBUG, with the project's own LOGGING, no credential reaches the log: not from our code, not from
oauthlib / requests_oauthlib (which print the OAuth parameters, access token included, at DEBUG)."""

import io
import logging
import logging.config
import runpy
from pathlib import Path
from urllib.parse import quote

import pytest
import responses

from commerce.client import CommerceClient
from fusion.client import FusionClient
from tests.connector.secrets import SECRET_VALUES, assert_no_secret_in
from tests.factories import make_connection

ROOT = Path(__file__).resolve().parents[2]
FUSION = "https://acme.fa.us2.oraclecloud.com"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
COMMERCE = "https://shop.example.com"
ISSUED_TOKEN = "eyJ-issued-fusion-bearer-7c1e-should-never-show"


@pytest.fixture
def debug_logging(monkeypatch):
    """The LOGGING dict that config/settings.py builds with LOG_LEVEL=DEBUG, installed; yields what the root
    handler writes. The test process's logging is put back afterwards."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("LOG_FORMAT", "text")
    config = runpy.run_path(str(ROOT / "config" / "settings.py"))["LOGGING"]
    assert config["root"]["level"] == "DEBUG"
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:], root.filters[:])
    names = set(config.get("loggers", {})) | {"oauthlib", "requests_oauthlib", "urllib3"}
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).handlers[:]) for name in names}
    logging.config.dictConfig(config)
    (handler,) = root.handlers
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.close()
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        root.filters[:] = saved_root[2]
        for name, (level, handlers) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).handlers[:] = handlers


def commerce_and_fusion_calls(connection):
    """A Commerce PaaS read (OAuth 1.0a) and a Fusion token fetch and read (OAuth 2.0), answered by `responses`."""
    responses.get(f"{COMMERCE}/rest/default/V1/orders/7", json={"entity_id": 7})
    assert CommerceClient.for_connection(connection).get("orders/7") == {"entity_id": 7}
    responses.post(TOKEN_URL, json={"access_token": ISSUED_TOKEN, "token_type": "Bearer", "expires_in": 3600})
    responses.get(f"{FUSION}/fscmRestApi/resources/11.13.18.05/receivablesInvoices", json={"items": []})
    assert FusionClient.for_connection(connection).get("receivablesInvoices", params={"limit": 1}) == {"items": []}


@pytest.mark.django_db
@pytest.mark.usefixtures("token_cache")
@responses.activate
def test_nothing_secret_is_logged_at_debug_by_a_commerce_and_a_fusion_call(debug_logging):
    commerce_and_fusion_calls(make_connection(**SECRET_VALUES))

    output = debug_logging.getvalue()
    assert " DEBUG " in output, "nothing was logged at DEBUG: the test could not catch a leak"
    assert_no_secret_in(output, [*SECRET_VALUES.values(), ISSUED_TOKEN])


@pytest.mark.django_db
@pytest.mark.usefixtures("token_cache")
@responses.activate
def test_the_known_secret_values_are_masked_even_when_oauthlib_is_let_through_at_debug(debug_logging):
    for name in ("oauthlib", "requests_oauthlib"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # what someone debugging a signature might do
    connection = make_connection(**SECRET_VALUES)
    commerce_and_fusion_calls(connection)
    logging.getLogger("tests.debug").debug(
        "token answer %s, form %s", {"token": ISSUED_TOKEN}, quote(connection.fusion_client_secret, safe="")
    )

    output = debug_logging.getvalue()
    assert "Collected params" in output
    assert "oauth_token" in output  # oauthlib did print the OAuth parameters...
    assert_no_secret_in(output, [*SECRET_VALUES.values(), ISSUED_TOKEN])  # ...with the values masked


def test_credential_loggers_stay_at_warning_whatever_log_level_says(monkeypatch):
    for level, expected in (("DEBUG", "WARNING"), ("INFO", "WARNING"), ("ERROR", "ERROR")):
        monkeypatch.setenv("LOG_LEVEL", level)
        loggers = runpy.run_path(str(ROOT / "config" / "settings.py"))["LOGGING"]["loggers"]
        assert loggers["oauthlib"]["level"] == expected
        assert loggers["requests_oauthlib"]["level"] == expected
