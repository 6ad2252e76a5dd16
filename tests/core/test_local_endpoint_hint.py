"""A connection pointing at the bundled mocks while CONNECTOR_ALLOW_LOCAL_ENDPOINTS is off: the record is parked
with the setting to turn on, not with advice to change a URL that is right."""

from __future__ import annotations

import pytest

from connector.models import Record
from connector.records import record_accept
from core.endpoints import checked_url, validate_fusion_base_url
from core.errors import PermanentError
from fusion.client import FusionClient
from sync.flows.sales_documents import record_process
from tests.factories import make_connection
from tests.posting import order_document, seed_mappings

pytestmark = pytest.mark.django_db

MOCKS = {
    "fusion_base_url": "http://127.0.0.1:8801",
    "fusion_token_url": "http://127.0.0.1:8801/oauth2/v1/token",
}


@pytest.fixture
def local_endpoints_off(settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False


def test_a_routed_order_to_the_mocks_is_parked_with_the_setting_to_turn_on(settings):
    # Saved while the setting was on (as in a demo), then the processes run without it.
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    connection = make_connection(**MOCKS)
    seed_mappings(connection)
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    record = record_accept(connection=connection, document=order_document()).record
    record_process(record_id=record.pk)
    record.refresh_from_db()
    assert record.state == Record.State.NEEDS_REVIEW
    assert "set CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 for the bundled mocks" in record.resolution_hint
    assert "Fix the Fusion base URL" not in record.resolution_hint


@pytest.mark.usefixtures("local_endpoints_off")
@pytest.mark.parametrize("url", ["http://localhost:8801", "https://127.0.0.1", "http://[::1]:8801"])
def test_every_loopback_spelling_gets_the_local_endpoint_hint(url):
    with pytest.raises(PermanentError) as caught:
        checked_url(validate_fusion_base_url, url, hint="Fix the Fusion base URL of the connection.")
    assert "CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1" in caught.value.hint


@pytest.mark.usefixtures("local_endpoints_off")
def test_a_wrong_public_host_still_asks_to_fix_the_url():
    connection = make_connection()
    connection.fusion_base_url = "http://acme.fa.us2.oraclecloud.com"
    with pytest.raises(PermanentError) as caught:
        FusionClient.for_connection(connection)
    assert caught.value.hint == "Fix the Fusion base URL of the connection."


def test_with_local_endpoints_on_the_mock_url_is_accepted(allow_local_endpoints):
    assert checked_url(validate_fusion_base_url, MOCKS["fusion_base_url"], hint="h") == MOCKS["fusion_base_url"]
