"""The mock Commerce answers as Adobe documents Commerce does (Adobe Commerce REST API): OAuth 1.0a HMAC-SHA256
integration requests on PaaS, checked by oauthlib; Adobe IMS tokens (/ims/token/v3) and x-api-key on SaaS;
searchCriteria; store scopes; Magento's error shape."""

import io
import time

import pytest
import requests
from django.core.management import call_command
from requests_oauthlib import OAuth1

from mocks.commerce import MockCommerce
from mocks.server import MockServer
from tests import mockservers
from tests.mockservers import running

commerce_mock = mockservers.commerce_mock

SCOPES = "openid,AdobeID,email,profile,additional_info.roles,additional_info.projectedProductContext,commerce.accs"


def oauth(
    consumer_secret="mock-consumer-secret",
    token_secret="mock-access-token-secret",
    method="HMAC-SHA256",
    **extra,
):
    return OAuth1(
        "mock-consumer-key",
        client_secret=consumer_secret,
        resource_owner_key="mock-access-token",
        resource_owner_secret=token_secret,
        signature_method=method,
        signature_type="AUTH_HEADER",
        **extra,
    )


def updated_since(value, *, size=None, page=None):
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
        "searchCriteria[filter_groups][0][filters][0][value]": value,
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
    }
    if size is not None:
        params["searchCriteria[pageSize]"] = size
        params["searchCriteria[currentPage]"] = page or 1
    return params


def ims_token(mock, **overrides):
    form = {
        "client_id": "mock-ims-client",
        "client_secret": "mock-ims-secret",
        "grant_type": "client_credentials",
        "scope": SCOPES,
    }
    form.update(overrides)
    return requests.post(f"{mock.url}/ims/token/v3", data=form, timeout=10)


def saas_headers(token, **extra):
    return {"Authorization": f"Bearer {token}", "x-api-key": "mock-ims-client", "Store": "default", **extra}


# --- PaaS: OAuth 1.0a -------------------------------------------------------------------------------------------


def test_a_request_signed_with_hmac_sha256_is_accepted(commerce_mock):
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth(), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["increment_id"] == "000000001"


def test_signed_query_parameters_are_part_of_the_check(commerce_mock):
    answer = requests.get(
        f"{commerce_mock.url}/rest/default/V1/orders",
        params=updated_since("2026-01-01 00:00:00"),
        auth=oauth(),
        timeout=10,
    )
    assert answer.status_code == 200
    prepared = requests.Request(
        "GET", f"{commerce_mock.url}/rest/default/V1/orders", params=updated_since("2026-01-01 00:00:00"), auth=oauth()
    ).prepare()
    prepared.url = prepared.url.replace("2026-01-01", "2020-01-01")  # tampered after signing
    tampered = requests.Session().send(prepared, timeout=10)
    assert tampered.status_code == 401
    assert commerce_mock.state()["last_oauth_failure"]["reason"] == "signature mismatch"


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (oauth(consumer_secret="wrong"), "signature mismatch"),
        (oauth(token_secret="wrong"), "signature mismatch"),
        (
            OAuth1(
                "other-key",
                client_secret="mock-consumer-secret",
                resource_owner_key="mock-access-token",
                resource_owner_secret="mock-access-token-secret",
                signature_method="HMAC-SHA256",
            ),
            "unknown consumer key",
        ),
        (None, "no OAuth Authorization header"),
    ],
)
def test_a_bad_signature_is_refused_as_magento_does(commerce_mock, auth, reason):
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=auth, timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "Magento_Sales::actions_view"},
    }
    assert answer.headers["X-Mock-Reason"] == reason


def test_hmac_sha1_is_not_supported(commerce_mock):
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth(method="HMAC-SHA1"), timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"message": "Signature method %1 is not supported", "parameters": ["HMAC-SHA1"]}


def test_a_replayed_nonce_is_refused(commerce_mock):
    prepared = requests.Request("GET", f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth()).prepare()
    session = requests.Session()
    assert session.send(prepared, timeout=10).status_code == 200
    again = session.send(prepared, timeout=10)
    assert again.status_code == 401 and "nonce" in again.json()["message"]


def test_a_stale_timestamp_is_refused(commerce_mock):
    stale = str(int(time.time()) - 3600)
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth(timestamp=stale), timeout=10)
    assert answer.status_code == 401 and answer.headers["X-Mock-Reason"] == "oauth_timestamp is out of range"


def test_get_on_store_code_all_is_refused_and_unknown_stores_are_not_found(commerce_mock):
    answer = requests.get(f"{commerce_mock.url}/rest/all/V1/products/24-MB01", auth=oauth(), timeout=10)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Cannot perform GET operation with store code 'all'"
    assert requests.get(f"{commerce_mock.url}/rest/nope/V1/orders/1", auth=oauth(), timeout=10).status_code == 404
    assert requests.get(f"{commerce_mock.url}/rest/V1/orders/1", auth=oauth(), timeout=10).status_code == 200


# --- searches and documents -------------------------------------------------------------------------------------


def test_seeded_documents_carry_money_as_strings(commerce_mock):
    order = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/2", auth=oauth(), timeout=10).json()
    assert order["grand_total"] == "131.9100" and order["discount_amount"] == "-12.0000"
    assert order["items"][0]["qty_ordered"] == "1.0000" and order["items"][1]["parent_item_id"] == 2
    assert order["extension_attributes"]["shipping_assignments"][0]["shipping"]["total"]["shipping_amount"] == "15.0000"


def test_orders_search_by_updated_at_pages_with_total_count(commerce_mock):
    url = f"{commerce_mock.url}/rest/default/V1/orders"
    page1 = requests.get(
        url, params=updated_since("2026-10-01 09:20:00", size=2, page=1), auth=oauth(), timeout=10
    ).json()
    assert page1["total_count"] == 3
    assert [o["increment_id"] for o in page1["items"]] == ["000000001", "000000002"]
    assert page1["search_criteria"]["filter_groups"][0]["filters"][0] == {
        "field": "updated_at",
        "value": "2026-10-01 09:20:00",
        "condition_type": "gteq",
    }
    page2 = requests.get(
        url, params=updated_since("2026-10-01 09:20:00", size=2, page=2), auth=oauth(), timeout=10
    ).json()
    assert [o["increment_id"] for o in page2["items"]] == ["000000003"]
    later = requests.get(url, params=updated_since("2026-10-15 00:00:00"), auth=oauth(), timeout=10).json()
    assert [o["increment_id"] for o in later["items"]] == ["000000002", "000000003"]


def test_a_page_past_the_end_repeats_the_last_page_like_magento(commerce_mock):
    answer = requests.get(
        f"{commerce_mock.url}/rest/default/V1/orders",
        params=updated_since("2026-01-01 00:00:00", size=2, page=9),
        auth=oauth(),
        timeout=10,
    ).json()
    assert answer["total_count"] == 3 and [o["entity_id"] for o in answer["items"]] == [3]


def test_search_criteria_errors(commerce_mock):
    url = f"{commerce_mock.url}/rest/default/V1/orders"
    missing = requests.get(url, auth=oauth(), timeout=10)
    assert missing.status_code == 400
    assert missing.json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "searchCriteria"},
    }
    too_big = requests.get(url, params=updated_since("2026-01-01 00:00:00", size=301), auth=oauth(), timeout=10)
    assert too_big.status_code == 400
    assert too_big.json() == {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}


def test_filters_in_a_group_are_ored_and_groups_anded(commerce_mock):
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "increment_id",
        "searchCriteria[filter_groups][0][filters][0][value]": "000000001",
        "searchCriteria[filter_groups][0][filters][1][field]": "increment_id",
        "searchCriteria[filter_groups][0][filters][1][value]": "000000003",
        "searchCriteria[filter_groups][1][filters][0][field]": "customer_is_guest",
        "searchCriteria[filter_groups][1][filters][0][value]": "0",
    }
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders", params=params, auth=oauth(), timeout=10)
    assert [o["entity_id"] for o in answer.json()["items"]] == [1]


def test_invoices_and_credit_memos_search_and_fetch(commerce_mock):
    base = f"{commerce_mock.url}/rest/default/V1"
    invoices = requests.get(f"{base}/invoices", params=updated_since("2026-10-05 00:00:00"), auth=oauth(), timeout=10)
    assert [i["order_id"] for i in invoices.json()["items"]] == [2]
    memos = requests.get(f"{base}/creditmemos", params=updated_since("2026-01-01 00:00:00"), auth=oauth(), timeout=10)
    assert memos.json()["items"][0]["grand_total"] == "33.1200"
    assert requests.get(f"{base}/creditmemo/1", auth=oauth(), timeout=10).json()["invoice_id"] == 2
    assert requests.get(f"{base}/invoices/1", auth=oauth(), timeout=10).json()["grand_total"] == "27.0000"


def test_an_unknown_order_is_a_404_in_magentos_words(commerce_mock):
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/999", auth=oauth(), timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {
        "message": "The entity that was requested doesn't exist. Verify the entity and try again.",
        "parameters": [],
    }


def test_an_order_added_through_the_admin_endpoint_shows_up_in_the_backfill_search(commerce_mock):
    added = requests.post(
        f"{commerce_mock.url}/__mock__/orders",
        json={"grand_total": "49.5000", "customer_email": "new@example.com"},
        timeout=10,
    )
    assert added.status_code == 201
    order = added.json()
    assert order["entity_id"] == 4 and order["increment_id"] == "000000004" and order["items"]
    found = requests.get(
        f"{commerce_mock.url}/rest/default/V1/orders",
        params=updated_since(order["updated_at"]),
        auth=oauth(),
        timeout=10,
    ).json()
    assert [o["entity_id"] for o in found["items"]] == [4]
    assert found["items"][0]["grand_total"] == "49.5000"


# --- customers and products -------------------------------------------------------------------------------------


def test_customer_create_rejects_a_duplicate_email(commerce_mock):
    url = f"{commerce_mock.url}/rest/default/V1/customers"
    body = {
        "customer": {
            "email": "new@example.com",
            "firstname": "New",
            "lastname": "Buyer",
            "website_id": 1,
            "custom_attributes": [{"attribute_code": "erp_account_number", "value": "20001"}],
        }
    }
    created = requests.post(url, json=body, auth=oauth(), timeout=10)
    assert created.status_code == 200 and created.json()["id"] == 4
    again = requests.post(url, json=body, auth=oauth(), timeout=10)
    assert again.status_code == 400 and "same email address" in again.json()["message"]


def test_customer_update_merges_custom_attributes_and_keeps_addresses(commerce_mock):
    url = f"{commerce_mock.url}/rest/default/V1/customers/1"
    body = {
        "customer": {
            "id": 1,
            "email": "jdoe@example.com",
            "firstname": "Jane",
            "lastname": "Doe",
            "website_id": 1,
            "custom_attributes": [{"attribute_code": "loyalty_tier", "value": "gold"}],
        }
    }
    updated = requests.put(url, json=body, auth=oauth(), timeout=10)
    assert updated.status_code == 200
    customer = requests.get(url, auth=oauth(), timeout=10).json()
    assert {a["attribute_code"]: a["value"] for a in customer["custom_attributes"]} == {
        "erp_account_number": "20002",
        "loyalty_tier": "gold",
    }
    assert len(customer["addresses"]) == 1 and customer["updated_at"] != "2026-09-20 10:00:00"


def test_customer_update_needs_every_required_field(commerce_mock):
    answer = requests.put(
        f"{commerce_mock.url}/rest/default/V1/customers/1",
        json={"customer": {"email": "jdoe@example.com", "lastname": "Doe"}},
        auth=oauth(),
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "firstname"},
    }


def test_customers_search(commerce_mock):
    params = {
        "searchCriteria[filter_groups][0][filters][0][field]": "email",
        "searchCriteria[filter_groups][0][filters][0][value]": "%@example.com",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "like",
    }
    answer = requests.get(
        f"{commerce_mock.url}/rest/default/V1/customers/search", params=params, auth=oauth(), timeout=10
    ).json()
    assert [c["id"] for c in answer["items"]] == [1, 2] and answer["total_count"] == 2  # not @csr.example.com


def test_product_writes_through_all_are_global_and_through_a_store_are_overrides(commerce_mock):
    sku_url = "/V1/products/24-MB01"
    body = {"product": {"sku": "24-MB01", "custom_attributes": [{"attribute_code": "erp_score", "value": "0.83"}]}}
    assert requests.put(f"{commerce_mock.url}/rest/all{sku_url}", json=body, auth=oauth(), timeout=10).ok
    store_only = {"product": {"sku": "24-MB01", "name": "Duffle (store view)"}}
    assert requests.put(f"{commerce_mock.url}/rest/default{sku_url}", json=store_only, auth=oauth(), timeout=10).ok
    seen = requests.get(f"{commerce_mock.url}/rest/default{sku_url}", auth=oauth(), timeout=10).json()
    assert {a["attribute_code"]: a["value"] for a in seen["custom_attributes"]}["erp_score"] == "0.83"
    assert seen["name"] == "Duffle (store view)"
    assert commerce_mock.products["24-MB01"]["name"] == "Joust Duffle Bag"
    assert [w["scope"] for w in commerce_mock.state()["product_writes"]] == ["all", "default"]


def test_product_create_and_missing_product(commerce_mock):
    created = requests.post(
        f"{commerce_mock.url}/rest/all/V1/products",
        json={"product": {"sku": "SKU-NEW/1", "name": "New thing", "price": "9.9900"}},
        auth=oauth(),
        timeout=10,
    )
    assert created.status_code == 200 and created.json()["sku"] == "SKU-NEW/1"
    fetched = requests.get(f"{commerce_mock.url}/rest/default/V1/products/SKU-NEW%2F1", auth=oauth(), timeout=10)
    assert fetched.json()["name"] == "New thing"
    missing = requests.get(f"{commerce_mock.url}/rest/default/V1/products/NOPE", auth=oauth(), timeout=10)
    assert missing.status_code == 404 and "product that was requested doesn't exist" in missing.json()["message"]


def test_store_configs_are_a_cheap_authorised_read(commerce_mock):
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/store/storeConfigs", auth=oauth(), timeout=10)
    assert answer.status_code == 200 and answer.json()[0]["code"] == "default"


# --- SaaS: IMS --------------------------------------------------------------------------------------------------


def test_ims_issues_a_day_long_token_that_opens_the_tenant_api(commerce_mock):
    answer = ims_token(commerce_mock)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    order = requests.get(
        f"{commerce_mock.url}/mocktenant/V1/orders/2", headers=saas_headers(body["access_token"]), timeout=10
    )
    assert order.status_code == 200 and order.json()["increment_id"] == "000000002"
    assert commerce_mock.state()["token_requests"] == 1


@pytest.mark.parametrize(
    ("override", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 400, "invalid_client"),
        ({"scope": "openid,AdobeID"}, 400, "invalid_scope"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
    ],
)
def test_ims_refuses_bad_client_credentials_and_scopes(commerce_mock, override, status, error):
    answer = ims_token(commerce_mock, **override)
    assert answer.status_code == status and answer.json()["error"] == error


def test_saas_needs_the_api_key_and_a_live_token(commerce_mock):
    token = ims_token(commerce_mock).json()["access_token"]
    url = f"{commerce_mock.url}/mocktenant/V1/orders/1"
    no_key = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert no_key.status_code == 403 and no_key.json()["message"] == "Api Key is required"
    wrong_key = requests.get(url, headers=saas_headers(token, **{"x-api-key": "other"}), timeout=10)
    assert wrong_key.status_code == 403
    assert requests.get(url, headers=saas_headers("made-up"), timeout=10).status_code == 401
    assert (
        requests.get(
            f"{commerce_mock.url}/othertenant/V1/orders/1", headers=saas_headers(token), timeout=10
        ).status_code
        == 404
    )
    commerce_mock.advance(86400)
    assert requests.get(url, headers=saas_headers(token), timeout=10).status_code == 401


# --- faults -----------------------------------------------------------------------------------------------------


def test_forbid_answers_403_naming_the_missing_resource(commerce_mock):
    commerce_mock.set_faults(forbid=True)
    answer = requests.get(f"{commerce_mock.url}/rest/default/V1/products/24-MB01", auth=oauth(), timeout=10)
    assert answer.status_code == 403
    assert answer.json()["parameters"] == {"resources": "Magento_Catalog::products"}


def test_drop_after_commit_creates_the_customer_but_never_answers(commerce_mock):
    commerce_mock.set_faults(drop_after_commit_rate=1.0)
    body = {"customer": {"email": "lost@example.com", "firstname": "L", "lastname": "Ost"}}
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{commerce_mock.url}/rest/default/V1/customers", json=body, auth=oauth(), timeout=10)
    assert any(c["email"] == "lost@example.com" for c in commerce_mock.customers.values())


def test_rate_limit_and_reset_through_the_control_surface(commerce_mock):
    requests.post(f"{commerce_mock.url}/__mock__/faults", json={"rate_limit": 1, "retry_after": 3}, timeout=10)
    throttled = requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth(), timeout=10)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["message"] == "Too many requests."
    requests.post(f"{commerce_mock.url}/__mock__/orders", json={}, timeout=10)
    state = requests.post(f"{commerce_mock.url}/__mock__/reset", timeout=10).json()
    assert state["orders"] == 3 and state["faults"]["rate_limit"] == 0
    assert requests.get(f"{commerce_mock.url}/rest/default/V1/orders/1", auth=oauth(), timeout=10).status_code == 200


def test_the_command_starts_the_mock_with_its_flags(monkeypatch):
    started = {}
    monkeypatch.setattr(MockServer, "serve_forever", lambda self, host, port: started.update(mock=self, port=port))
    call_command(
        "mock_commerce",
        "--port",
        "8898",
        "--tenant",
        "acme",
        "--store-code",
        "default",
        "--store-code",
        "fr",
        "--error-rate",
        "0.1",
        "--token-lifetime",
        "30",
        stdout=io.StringIO(),
    )
    mock = started["mock"]
    assert isinstance(mock, MockCommerce) and started["port"] == 8898
    assert mock.tenant == "acme" and mock.store_codes == ("default", "fr")
    assert mock.faults.error_rate == 0.1 and mock.faults.token_lifetime == 30


def test_a_mock_started_by_hand_stops_cleanly():
    with running(MockCommerce()) as mock:
        url = mock.url
        assert requests.get(f"{url}/__mock__/state", timeout=10).ok
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/__mock__/state", timeout=2)
