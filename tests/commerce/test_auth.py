from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import responses
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature
from responses import matchers

from commerce.client import CommerceClient
from connector.models import Connection
from core.errors import AuthError, TransientError
from tests.factories import make_connection

SHOP = "https://shop.example.com"
SAAS_BASE = "https://na1.api.commerce.adobe.com/Tn4nt1d"
IMS = "https://ims-na1.adobelogin.com/ims/token/v3"
IMS_SECRET = "ims-client-secret-value"
SCOPES = "openid,AdobeID,email,profile,additional_info.roles,additional_info.projectedProductContext,commerce.accs"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token_cache")]


# --- PaaS: OAuth 1.0a HMAC-SHA256, checked the way a server checks it ---------------------------------------


def verifies(request, *, consumer_secret="consumer-secret-value", token_secret="access-token-secret-value"):
    """oauthlib's server-side check of a captured request (what Commerce does with the Authorization header)."""
    headers = dict(request.headers)
    oauth_request = OAuthRequest(request.url, http_method=request.method, body=None, headers=headers)
    params = signature.collect_parameters(
        uri_query=urlsplit(request.url).query, headers=headers, exclude_oauth_signature=False
    )
    oauth_request.params = [(k, v) for k, v in params if k != "oauth_signature"]
    oauth_request.signature = dict(params)["oauth_signature"]
    oauth = dict(oauth_request.params)
    assert oauth["oauth_signature_method"] == "HMAC-SHA256"
    assert oauth["oauth_consumer_key"] == "consumer-key"
    assert oauth["oauth_token"] == "access-token-value"
    return signature.verify_hmac_sha256(oauth_request, consumer_secret, token_secret)


@responses.activate
def test_a_signed_search_verifies_with_oauthlibs_server_side_hmac_sha256_check():
    responses.get(f"{SHOP}/rest/default/V1/orders", json={"items": [], "total_count": 0})
    client = CommerceClient.for_connection(make_connection())
    list(client.iter_orders(datetime(2026, 11, 1, tzinfo=UTC)))
    sent = responses.calls[0].request
    assert "searchCriteria%5Bfilter_groups%5D" in sent.url  # the query, brackets and all, is part of what is signed
    assert verifies(sent)
    assert not verifies(sent, consumer_secret="another-secret")
    assert not verifies(sent, token_secret="another-token-secret")


@responses.activate
def test_a_signed_write_with_a_json_body_verifies_and_tampering_does_not():
    responses.put(f"{SHOP}/rest/all/V1/products/A%2FB", json={"sku": "A/B"})
    client = CommerceClient.for_connection(make_connection())
    client.update_product("A/B", {"sku": "A/B", "custom_attributes": [{"attribute_code": "x", "value": "1"}]})
    sent = responses.calls[0].request
    assert verifies(sent)
    sent.url = sent.url.replace("/rest/all/", "/rest/default/")
    assert not verifies(sent)


@responses.activate
def test_every_request_gets_a_fresh_nonce():
    responses.get(f"{SHOP}/rest/default/V1/orders/1", json={"entity_id": 1})
    client = CommerceClient.for_connection(make_connection())
    client.get_order(1)
    client.get_order(1)
    nonces = [
        dict(signature.collect_parameters(headers=dict(c.request.headers)))["oauth_nonce"] for c in responses.calls
    ]
    assert len(set(nonces)) == 2


# --- SaaS: IMS client credentials --------------------------------------------------------------------------


def saas_connection(**overrides):
    values = {
        "commerce_deployment": Connection.Deployment.SAAS,
        "commerce_base_url": SAAS_BASE,
        "commerce_client_id": "ims-client-id",
        "commerce_client_secret": IMS_SECRET,
        "commerce_consumer_key": "",
    }
    values.update(overrides)
    return make_connection(**values)


def issue(*lifetimes):
    return [
        responses.post(
            IMS,
            json={"access_token": f"ims-{n}", "token_type": "bearer", "expires_in": life},
            match=[
                matchers.urlencoded_params_matcher(
                    {
                        "client_id": "ims-client-id",
                        "client_secret": IMS_SECRET,
                        "grant_type": "client_credentials",
                        "scope": SCOPES,
                    }
                )
            ],
        )
        for n, life in enumerate(lifetimes, start=1)
    ]


def orders_with(token, **kwargs):
    return responses.get(
        f"{SAAS_BASE}/V1/orders/1",
        match=[matchers.header_matcher({"Authorization": f"Bearer {token}"})],
        **({"json": {"entity_id": 1}} | kwargs),
    )


def ims_calls():
    return [c for c in responses.calls if c.request.url == IMS]


@responses.activate
def test_one_ims_token_serves_many_requests_across_clients():
    connection = saas_connection()
    issue(86399, 86399)
    orders_with("ims-1")
    for _ in range(3):
        client = CommerceClient.for_connection(connection)
        client.get_order(1)
        client.get_order(1)
    assert len(ims_calls()) == 1


@responses.activate
def test_saas_token_is_refreshed_on_expiry(clock):
    connection = saas_connection()
    issue(86399, 86399)
    first, second = orders_with("ims-1"), orders_with("ims-2")
    client = CommerceClient.for_connection(connection)
    client.get_order(1)
    clock["t"] += 86399 - 400  # more than five minutes left
    client.get_order(1)
    clock["t"] += 86399  # long expired
    client.get_order(1)
    assert (first.call_count, second.call_count) == (2, 1)
    assert len(ims_calls()) == 2


@responses.activate
def test_saas_401_refreshes_once_then_gives_up_in_plain_words():
    connection = saas_connection()
    issue(86399, 86399, 86399)
    orders_with("ims-1", status=401, json={"message": "The consumer isn't authorized to access %resources."})
    orders_with("ims-2", status=401, json={"message": "The consumer isn't authorized to access %resources."})
    with pytest.raises(AuthError) as caught:
        CommerceClient.for_connection(connection).get_order(1)
    assert "freshly fetched token was refused as well" in caught.value.message
    assert "commerce.accs" in caught.value.hint
    assert len(ims_calls()) == 2
    assert len([c for c in responses.calls if c.request.url.startswith(SAAS_BASE)]) == 2


@responses.activate
def test_saas_401_then_success_after_one_refresh():
    connection = saas_connection()
    issue(86399, 86399)
    orders_with("ims-1", status=401, json={"message": "Token expired"})
    ok = orders_with("ims-2")
    assert CommerceClient.for_connection(connection).get_order(1) == {"entity_id": 1}
    assert ok.call_count == 1


@responses.activate
def test_ims_invalid_client_is_an_auth_error_without_the_secret():
    responses.post(
        IMS,
        status=400,
        json={"error": "invalid_client", "error_description": f"invalid client_secret parameter {IMS_SECRET}"},
    )
    with pytest.raises(AuthError) as caught:
        CommerceClient.for_connection(saas_connection()).get_order(1)
    assert caught.value.message.startswith("Adobe IMS rejected the Commerce client id or secret")
    assert IMS_SECRET not in str(caught.value)
    assert IMS_SECRET not in str(caught.value.as_dict())


@responses.activate
def test_ims_invalid_scope_and_throttling():
    responses.post(IMS, status=400, json={"error": "invalid_scope", "error_description": "invalid scope"})
    with pytest.raises(AuthError, match="refused the scopes"):
        CommerceClient.for_connection(saas_connection()).ensure_token()
    responses.replace(responses.POST, IMS, status=429, headers={"Retry-After": "5"}, json={})
    with pytest.raises(TransientError, match="throttling"):
        CommerceClient.for_connection(saas_connection(commerce_client_secret="other-secret")).ensure_token()


def test_ensure_token_is_a_no_op_for_oauth1():
    with responses.RequestsMock() as mock:
        CommerceClient.for_connection(make_connection()).ensure_token(fresh=True)
        assert len(mock.calls) == 0


def test_reprs_never_show_credentials():
    paas = CommerceClient.for_connection(make_connection())
    saas = CommerceClient.for_connection(saas_connection())
    text = repr(paas) + repr(paas.auth) + repr(saas) + repr(saas.auth) + repr(saas.auth.store)
    for secret in ("consumer-secret-value", "access-token-secret-value", IMS_SECRET):
        assert secret not in text
