from datetime import UTC, datetime
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from commerce.client import CommerceClient, render_message
from connector.models import Connection
from core.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
    ValidationRejectedError,
)
from mocks.commerce import search
from mocks.server import MockRequest
from tests.factories import make_connection

SHOP = "https://shop.example.com"
REST = f"{SHOP}/rest/default/V1"
ALL = f"{SHOP}/rest/all/V1"
SAAS_BASE = "https://na1.api.commerce.adobe.com/Tn4nt1d"
IMS = "https://ims-na1.adobelogin.com/ims/token/v3"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token_cache")]


@pytest.fixture
def client():
    return CommerceClient.for_connection(make_connection())


def saas_connection(**overrides):
    values = {
        "commerce_deployment": Connection.Deployment.SAAS,
        "commerce_base_url": SAAS_BASE,
        "commerce_client_id": "ims-client-id",
        "commerce_client_secret": "ims-client-secret-value",
        "commerce_consumer_key": "",
        "commerce_consumer_secret": "",
        "commerce_access_token": "",
        "commerce_access_token_secret": "",
        "commerce_org_id": "ABC123@AdobeOrg",
    }
    values.update(overrides)
    return make_connection(**values)


# --- PaaS URLs and store scope ------------------------------------------------------------------------------


@responses.activate
def test_paas_reads_go_to_the_store_view_and_are_oauth1_signed(client):
    responses.get(f"{REST}/orders/12", json={"entity_id": 12, "increment_id": "000000012"})
    assert client.get_order(12) == {"entity_id": 12, "increment_id": "000000012"}
    sent = responses.calls[0].request
    authorization = sent.headers["Authorization"]
    assert authorization.startswith("OAuth ")
    assert 'oauth_signature_method="HMAC-SHA256"' in authorization
    assert sent.headers["Accept"] == "application/json"


@responses.activate
def test_global_product_writes_go_through_store_all(client):
    responses.put(
        f"{ALL}/products/WS12-M-Orange",
        json={"sku": "WS12-M-Orange"},
        match=[
            matchers.json_params_matcher(
                {"product": {"sku": "WS12-M-Orange", "custom_attributes": [{"attribute_code": "erp", "value": "1"}]}}
            )
        ],
    )
    responses.put(f"{REST}/products/WS12-M-Orange", json={"sku": "WS12-M-Orange", "scope": "store"})
    responses.post(
        f"{ALL}/products", json={"sku": "NEW-1"}, match=[matchers.json_params_matcher({"product": {"sku": "NEW-1"}})]
    )
    payload = {"sku": "WS12-M-Orange", "custom_attributes": [{"attribute_code": "erp", "value": "1"}]}
    assert client.update_product("WS12-M-Orange", payload) == {"sku": "WS12-M-Orange"}
    assert client.update_product("WS12-M-Orange", payload, all_stores=False)["scope"] == "store"
    assert client.create_product({"sku": "NEW-1"}) == {"sku": "NEW-1"}


def test_a_get_on_store_all_is_refused_without_calling(client):
    with responses.RequestsMock() as mock:
        with pytest.raises(PermanentError, match="GET with store code 'all'"):
            client.get("products/WS12", store="all")
        assert len(mock.calls) == 0


@responses.activate
def test_skus_are_quoted_into_one_path_segment(client):
    responses.get(f"{REST}/products/A%2FB%20C", json={"sku": "A/B C"})
    assert client.get_product("A/B C") == {"sku": "A/B C"}


@pytest.mark.parametrize(
    "path", ["orders/../customers", "https://evil.example/x", "orders?x=1", "orders#x", "/orders", "a//b"]
)
def test_anything_but_an_api_path_is_refused(client, path):
    with pytest.raises(PermanentError):
        client.url_for(path)


def test_entity_ids_must_be_numbers(client):
    with pytest.raises(PermanentError):
        client.get_order("12/../../customers/1")


# --- customers ----------------------------------------------------------------------------------------------


@responses.activate
def test_customers_are_read_created_and_updated(client):
    customer = {
        "id": 42,
        "email": "a@b.c",
        "firstname": "A",
        "lastname": "B",
        "website_id": 1,
        "custom_attributes": [{"attribute_code": "loyalty_tier", "value": "gold"}],
    }
    responses.get(f"{REST}/customers/42", json=customer)
    responses.put(f"{REST}/customers/42", json=customer, match=[matchers.json_params_matcher({"customer": customer})])
    responses.post(
        f"{REST}/customers",
        json=customer,
        match=[matchers.json_params_matcher({"customer": customer, "password": "Secret-123"})],
    )
    assert client.get_customer(42) == customer
    assert client.update_customer(42, customer) == customer
    assert client.create_customer({"customer": customer, "password": "Secret-123"}) == customer
    assert "Secret-123" not in str(client.exchanges)


# --- paging -------------------------------------------------------------------------------------------------


def _page_matcher(page, size, since="2026-11-01 00:00:00", after=None):
    """The search the keyset iterator sends: `updated_at >= since`, and past a page, also
    `updated_at > since OR entity_id > after`; always sorted updated_at then entity_id."""
    F = "searchCriteria[filter_groups][0][filters][0]"
    params = {
        f"{F}[field]": "updated_at",
        f"{F}[value]": since,
        f"{F}[condition_type]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": str(size),
        "searchCriteria[currentPage]": str(page),
    }
    if after is not None:
        G = "searchCriteria[filter_groups][1][filters]"
        params.update(
            {
                f"{G}[0][field]": "updated_at",
                f"{G}[0][value]": since,
                f"{G}[0][condition_type]": "gt",
                f"{G}[1][field]": "entity_id",
                f"{G}[1][value]": str(after),
                f"{G}[1][condition_type]": "gt",
            }
        )
    return matchers.query_param_matcher(params)


def row(entity_id, updated_at):
    return {"entity_id": entity_id, "increment_id": f"{entity_id:09d}", "updated_at": updated_at}


def search_server(rows, *, on_call=None, ignore_keyset=False):
    """A responses callback answering searchCriteria like Commerce (the bundled mock's search: OR inside a group,
    AND across groups, a page past the end clamped to the last page). `rows()` gives the rows at the moment of
    the call; `on_call(n)` runs before answering call n (1-based), to change documents between pages."""
    calls = []

    def callback(request):
        calls.append(request.url)
        if on_call is not None:
            on_call(len(calls))
        parts = urlsplit(request.url)
        query = parse_qs(parts.query, keep_blank_values=True)
        if ignore_keyset:  # a server that drops the second filter group
            query = {k: v for k, v in query.items() if "[filter_groups][1]" not in k}
        mock = MockRequest("GET", parts.path, query, parts.query, Message(), b"", request.url)
        answer = search(mock, [dict(r) for r in rows()], max_page_size=300)
        return answer.status, {"Content-Type": "application/json"}, answer.body

    return callback, calls


@responses.activate
def test_iter_orders_asks_again_from_the_last_row_seen_not_for_page_n(client):
    since = datetime(2026, 11, 1, tzinfo=UTC)
    first = [row(1, "2026-11-01 08:00:00"), row(2, "2026-11-01 09:30:00")]
    second = [row(3, "2026-11-01 09:30:00"), row(4, "2026-11-02 10:00:00")]
    responses.get(f"{REST}/orders", json={"items": first, "total_count": 5}, match=[_page_matcher(1, 2)])
    responses.get(
        f"{REST}/orders",
        json={"items": second, "total_count": 3},
        match=[_page_matcher(1, 2, since="2026-11-01 09:30:00", after=2)],
    )
    responses.get(
        f"{REST}/orders",
        json={"items": [row(5, "2026-11-03 00:00:00")], "total_count": 1},
        match=[_page_matcher(1, 2, since="2026-11-02 10:00:00", after=4)],
    )
    assert [o["entity_id"] for o in client.iter_orders(since, page_size=2)] == [1, 2, 3, 4, 5]
    assert len(responses.calls) == 3  # the last page was short: no fourth request


@responses.activate
def test_rows_changing_between_pages_are_not_skipped(client):
    rows = [row(n, f"2026-11-01 0{n}:00:00") for n in range(1, 6)]

    def order_1_is_edited(call):
        if call == 2:  # between the first and the second page, order 1 is saved again
            rows[0] = row(1, "2026-11-01 09:00:00")

    callback, calls = search_server(lambda: rows, on_call=order_1_is_edited)
    responses.add_callback(responses.GET, f"{REST}/orders", callback=callback)
    seen = [o["entity_id"] for o in client.iter_orders(datetime(2026, 11, 1, tzinfo=UTC), page_size=2)]
    # Page numbers would have answered page 2 with orders 4 and 5 (order 1 moved to the end): 3 lost.
    assert sorted(set(seen)) == [1, 2, 3, 4, 5]
    assert seen == [1, 2, 3, 4, 5, 1]
    assert all("currentPage%5D=1" in url for url in calls)


@responses.activate
def test_more_rows_at_one_timestamp_than_a_page_holds_are_all_read(client):
    rows = [row(n, "2026-11-01 12:00:00") for n in range(1, 8)]
    callback, calls = search_server(lambda: rows)
    responses.add_callback(responses.GET, f"{REST}/orders", callback=callback)
    assert [o["entity_id"] for o in client.iter_orders(datetime(2026, 11, 1, tzinfo=UTC), page_size=3)] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]
    assert len(calls) == 3


@responses.activate
def test_a_server_that_ignores_the_keyset_filter_is_still_read_to_the_end(client):
    rows = [row(n, "2026-11-01 12:00:00") for n in range(1, 6)]
    callback, calls = search_server(lambda: rows, ignore_keyset=True)
    responses.add_callback(responses.GET, f"{REST}/orders", callback=callback)
    seen = [o["entity_id"] for o in client.iter_orders(datetime(2026, 11, 1, tzinfo=UTC), page_size=2)]
    assert seen == [1, 2, 3, 4, 5]
    assert len(calls) == 4  # page 1, the ignored boundary (page 1 again), then pages 2 and 3


@responses.activate
def test_iter_invoices_stops_on_an_empty_page(client):
    since = datetime(2026, 11, 1, tzinfo=UTC)
    responses.get(
        f"{REST}/invoices", json={"items": [{"entity_id": 1}], "total_count": 10}, match=[_page_matcher(1, 1)]
    )
    responses.get(f"{REST}/invoices", json={"items": [], "total_count": 10}, match=[_page_matcher(2, 1)])
    assert [i["entity_id"] for i in client.iter_invoices(since, page_size=1)] == [1]
    assert len(responses.calls) == 2


@responses.activate
def test_creditmemos_and_customers_search_their_own_endpoints(client):
    since = datetime(2026, 11, 1, tzinfo=UTC)
    responses.get(
        f"{REST}/creditmemos", json={"items": [{"entity_id": 9}], "total_count": 1}, match=[_page_matcher(1, 300)]
    )
    responses.get(
        f"{REST}/customers/search", json={"items": [{"id": 42}], "total_count": 1}, match=[_page_matcher(1, 300)]
    )
    assert list(client.iter_creditmemos(since)) == [{"entity_id": 9}]
    assert list(client.iter_customers(since)) == [{"id": 42}]


def test_page_size_never_exceeds_three_hundred(client):
    with responses.RequestsMock() as mock:
        mock.get(f"{REST}/orders", json={"items": [], "total_count": 0}, match=[_page_matcher(1, 300)])
        assert list(client.iter_orders(datetime(2026, 11, 1, tzinfo=UTC), page_size=1000)) == []


# --- errors -------------------------------------------------------------------------------------------------


def test_placeholders_are_filled_from_lists_and_objects():
    assert render_message("Signature method %1 is not supported", ["HMAC-SHA1"]) == (
        "Signature method HMAC-SHA1 is not supported"
    )
    assert render_message(
        "The consumer isn't authorized to access %resources.", {"resources": "Magento_Sales::actions_view"}
    ) == ("The consumer isn't authorized to access Magento_Sales::actions_view.")
    assert render_message("%1 of %2 (%3)", ["a", "b"]) == "a of b (%3)"
    assert render_message("100%", None) == "100%"


@responses.activate
def test_validation_error_renders_message_and_nested_errors(client):
    responses.post(
        f"{REST}/customers",
        status=400,
        json={
            "message": "Signature method %1 is not supported",
            "parameters": ["HMAC-SHA1"],
            "errors": [{"message": '"%fieldName" is required.', "parameters": {"fieldName": "email"}}],
        },
    )
    with pytest.raises(ValidationRejectedError) as caught:
        client.create_customer({"firstname": "A"})
    assert "Signature method HMAC-SHA1 is not supported" in caught.value.message
    assert '"email" is required.' in caught.value.message


@responses.activate
def test_paas_401_is_an_auth_error_about_the_signature_and_is_not_retried(client):
    responses.get(
        f"{REST}/orders/1",
        status=401,
        json={
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": "Magento_Sales::actions_view"},
        },
    )
    with pytest.raises(AuthError) as caught:
        client.get_order(1)
    assert "Magento_Sales::actions_view" in caught.value.message
    assert "OAuth 1.0a signature" in caught.value.hint
    assert len(responses.calls) == 1


@responses.activate
def test_not_found_forbidden_and_outages_are_typed(client):
    responses.get(
        f"{REST}/orders/404",
        status=404,
        json={"message": "The entity that was requested doesn't exist. Verify the entity and try again."},
    )
    responses.get(f"{REST}/orders/403", status=403, json={"message": "Forbidden"})
    responses.get(f"{REST}/orders/503", status=503, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(NotFoundError, match="doesn't exist"):
        client.get_order(404)
    with pytest.raises(AuthError, match="role or privilege") as forbidden:
        client.get_order(403)
    assert "ACL" in forbidden.value.hint
    with pytest.raises(TransientError) as outage:
        client.get_order(503)
    assert "<html>" not in outage.value.message
    assert len([c for c in responses.calls if c.request.url.endswith("/503")]) == 3  # a read is retried


@responses.activate
def test_a_put_that_times_out_is_not_retried_and_its_outcome_is_unknown(client):
    update = responses.put(f"{REST}/customers/42", body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(OutcomeUnknownError):
        client.update_customer(42, {"id": 42})
    assert update.call_count == 1


@responses.activate
def test_exchanges_hide_the_oauth_header_and_secrets(client):
    responses.get(f"{REST}/orders/1", json={"entity_id": 1})
    client.get_order(1)
    taken = client.take_exchanges()
    signature = responses.calls[0].request.headers["Authorization"]
    assert taken[0]["request_headers"]["Authorization"] == "***"
    text = str(taken)
    for secret in ("consumer-secret-value", "access-token-value", "access-token-secret-value", signature):
        assert secret not in text


def test_missing_paas_credentials_are_named():
    connection = make_connection()
    connection.commerce_access_token_secret = ""
    with pytest.raises(PermanentError, match="access token secret is missing"):
        CommerceClient.for_connection(connection)


# --- SaaS ---------------------------------------------------------------------------------------------------


@responses.activate
def test_saas_calls_use_tenant_urls_store_and_api_key_headers():
    responses.post(IMS, json={"access_token": "ims-token-1", "token_type": "bearer", "expires_in": 86399})
    responses.get(
        f"{SAAS_BASE}/V1/orders/12",
        json={"entity_id": 12},
        match=[
            matchers.header_matcher(
                {
                    "Authorization": "Bearer ims-token-1",
                    "Store": "default",
                    "x-api-key": "ims-client-id",
                    "x-gw-ims-org-id": "ABC123@AdobeOrg",
                }
            )
        ],
    )
    responses.put(
        f"{SAAS_BASE}/V1/products/SKU-1",
        json={"sku": "SKU-1"},
        match=[matchers.header_matcher({"Store": "all", "Authorization": "Bearer ims-token-1"})],
    )
    client = CommerceClient.for_connection(saas_connection())
    assert client.get_order(12) == {"entity_id": 12}
    assert client.update_product("SKU-1", {"sku": "SKU-1"}) == {"sku": "SKU-1"}
    assert "ims-client-secret-value" not in str(client.exchanges)


def test_saas_get_on_all_is_refused_too():
    client = CommerceClient.for_connection(saas_connection())
    with pytest.raises(PermanentError, match="'all'"):
        client.get("products/SKU-1", store="all")


def test_a_saas_base_url_without_tenant_cannot_build_a_client():
    connection = saas_connection()
    connection.commerce_base_url = "https://na1.api.commerce.adobe.com"
    with pytest.raises(PermanentError, match="tenant"):
        CommerceClient.for_connection(connection)
