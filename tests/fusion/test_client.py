import email.utils
import time
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from connector.models import Connection
from core.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
    ValidationRejectedError,
)
from core.http import clock as http_clock
from fusion.client import FusionClient
from fusion.query import q_expr
from tests.factories import make_connection

BASE = "https://acme.fa.us2.oraclecloud.com"
API = f"{BASE}/fscmRestApi/resources/11.13.18.05"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
INVOICES = f"{API}/receivablesInvoices"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token_cache")]


@pytest.fixture
def token():
    return responses.post(TOKEN_URL, json={"access_token": "eyJ-token-1", "token_type": "Bearer", "expires_in": 3600})


@pytest.fixture
def client():
    return FusionClient.for_connection(make_connection())


# --- URLs ---------------------------------------------------------------------------------------------------


def test_urls_are_built_from_the_validated_base_and_known_context_roots(client):
    assert client.url_for("receivablesInvoices") == INVOICES
    assert client.url_for("receivablesInvoices/300100170996427/child/receivablesInvoiceLines") == (
        f"{INVOICES}/300100170996427/child/receivablesInvoiceLines"
    )
    assert client.url_for("crmRestApi/accounts") == f"{BASE}/crmRestApi/resources/11.13.18.05/accounts"
    assert client.url_for("fscmRestApi/itemsV2") == f"{API}/itemsV2"


@pytest.mark.parametrize(
    "resource",
    [
        "https://evil.example/steal",
        "//evil.example/x",
        "receivablesInvoices/../../../other",
        "receivablesInvoices?q=1",
        "receivablesInvoices#x",
        "/receivablesInvoices",
        "receivablesInvoices//1",
        "receivables Invoices",
        "receivablesInvoices/.",
        "crmRestApi",
        "",
        "a\\b",
    ],
)
def test_anything_but_a_resource_path_is_refused(client, resource):
    with pytest.raises(PermanentError):
        client.url_for(resource)


def test_a_connection_with_an_unvalidated_base_url_cannot_build_a_client(db):
    connection = make_connection()
    connection.fusion_base_url = "https://evil.example.com"
    with pytest.raises(PermanentError, match="not a valid host"):
        FusionClient.for_connection(connection)


# --- calls --------------------------------------------------------------------------------------------------


@responses.activate
def test_get_sends_json_headers_framework_version_and_bearer(client, token):
    responses.get(
        INVOICES,
        json={"items": [], "count": 0, "hasMore": False},
        match=[
            matchers.header_matcher(
                {
                    "Accept": "application/json",
                    "Content-Type": "application/json",
                    "REST-Framework-Version": "4",
                    "Authorization": "Bearer eyJ-token-1",
                }
            ),
            matchers.query_param_matcher({"limit": "1"}),
        ],
    )
    assert client.get("receivablesInvoices", params={"limit": 1}) == {"items": [], "count": 0, "hasMore": False}


@responses.activate
def test_post_sends_json_and_returns_the_answer(client, token):
    responses.post(
        INVOICES,
        status=201,
        json={"CustomerTransactionId": 1},
        match=[matchers.json_params_matcher({"TransactionNumber": "MAG-1"})],
    )
    assert client.post("receivablesInvoices", json={"TransactionNumber": "MAG-1"}) == {"CustomerTransactionId": 1}


@responses.activate
def test_a_post_that_times_out_is_not_retried_and_raises_outcome_unknown(client, token):
    create = responses.post(INVOICES, body=requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(OutcomeUnknownError):
        client.post("receivablesInvoices", json={"TransactionNumber": "MAG-1"})
    assert create.call_count == 1


@responses.activate
def test_a_post_whose_connection_drops_after_sending_raises_outcome_unknown(client, token):
    create = responses.post(INVOICES, body=requests.exceptions.ConnectionError("Connection aborted."))
    with pytest.raises(OutcomeUnknownError):
        client.post("receivablesInvoices", json={"TransactionNumber": "MAG-1"})
    assert create.call_count == 1


@responses.activate
def test_reads_honour_retry_after(client, token, monkeypatch):
    waited = []
    monkeypatch.setattr(http_clock, "sleep", waited.append)
    responses.get(INVOICES, status=429, headers={"Retry-After": "3"})
    responses.get(INVOICES, json={"items": []})
    assert client.get("receivablesInvoices") == {"items": []}
    assert waited == [3.0]


# --- paging -------------------------------------------------------------------------------------------------


@responses.activate
def test_iter_items_pages_with_limit_offset_and_stops_when_has_more_is_false(client, token):
    q = q_expr(("TransactionSource", "=", "COMMERCE_WEB"))
    common = {"q": q, "orderBy": "CustomerTransactionId", "onlyData": "true", "limit": "2"}
    pages = [
        ({"offset": "0"}, {"items": [{"id": 1}, {"id": 2}], "hasMore": True}),
        ({"offset": "2"}, {"items": [{"id": 3}, {"id": 4}], "hasMore": True}),
        ({"offset": "4"}, {"items": [{"id": 5}], "hasMore": False}),
    ]
    for extra, body in pages:
        responses.get(INVOICES, json=body, match=[matchers.query_param_matcher({**common, **extra})])
    beyond = responses.get(
        INVOICES,
        json={"items": [{"id": 6}], "hasMore": False},
        match=[matchers.query_param_matcher({**common, "offset": "5"})],
    )
    items = list(client.iter_items("receivablesInvoices", q=q, order_by="CustomerTransactionId", page_size=2))
    assert [item["id"] for item in items] == [1, 2, 3, 4, 5]
    assert beyond.call_count == 0


@responses.activate
def test_iter_items_caps_the_page_at_500_and_passes_fields_and_params(client, token):
    responses.get(
        f"{API}/itemsV2",
        json={"items": [{"ItemNumber": "A"}], "hasMore": False},
        match=[
            matchers.query_param_matcher(
                {
                    "limit": "500",
                    "offset": "0",
                    "onlyData": "true",
                    "orderBy": "LastUpdateDate,ItemId",
                    "fields": "ItemId,ItemNumber",
                    "finder": "ItemFinder",
                }
            )
        ],
    )
    items = client.iter_items(
        "itemsV2",
        order_by="LastUpdateDate,ItemId",
        fields="ItemId,ItemNumber",
        page_size=5000,
        params={"finder": "ItemFinder"},
    )
    assert list(items) == [{"ItemNumber": "A"}]


@responses.activate
def test_iter_items_stops_on_an_empty_page_even_if_fusion_claims_more(client, token):
    responses.get(INVOICES, json={"items": [], "hasMore": True})
    assert list(client.iter_items("receivablesInvoices", order_by="CustomerTransactionId")) == []
    assert len([c for c in responses.calls if c.request.method == "GET"]) == 1


def test_iter_items_needs_a_valid_order_by(client):
    with pytest.raises(ValueError):
        list(client.iter_items("receivablesInvoices", order_by="x; drop"))


# --- errors -------------------------------------------------------------------------------------------------


@responses.activate
def test_validation_error_carries_fusions_error_details(client, token):
    responses.post(
        INVOICES,
        status=400,
        json={
            "title": "Bad Request",
            "status": "400",
            "o:errorDetails": [
                {"detail": "The transaction number MAG-1 already exists.", "o:errorCode": "AR-855000"},
                {"detail": "The bill-to site is not valid."},
            ],
        },
    )
    with pytest.raises(ValidationRejectedError) as caught:
        client.post("receivablesInvoices", json={})
    error = caught.value
    assert "The transaction number MAG-1 already exists. (AR-855000)" in error.message
    assert "The bill-to site is not valid." in error.message
    assert error.status == 400
    assert error.method == "POST"


@responses.activate
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"json": {"title": "Conflict", "detail": "Row was changed by another user"}}, "Row was changed"),
        ({"json": {"title": "Precondition failed"}}, "Precondition failed"),
        (
            {"body": "Invalid operation create for the specified resource.", "content_type": "text/plain"},
            "Invalid operation create",
        ),
    ],
)
def test_other_error_shapes_are_read_too(client, token, body, expected):
    responses.post(INVOICES, status=409, **body)
    with pytest.raises(ValidationRejectedError, match=expected):
        client.post("receivablesInvoices", json={})


@responses.activate
def test_an_html_error_page_is_not_copied_into_the_message(client, token):
    responses.post(INVOICES, status=422, body="<html><body>Oops</body></html>", content_type="text/html")
    with pytest.raises(ValidationRejectedError) as caught:
        client.post("receivablesInvoices", json={})
    assert "<html>" not in caught.value.message


@responses.activate
def test_forbidden_says_which_role_is_missing(client, token):
    responses.post(INVOICES, status=403, body="")
    with pytest.raises(AuthError) as caught:
        client.post("receivablesInvoices", json={})
    assert "role or privilege" in caught.value.message
    assert "AR_CREATE_RECEIVABLES_INVOICE_PRIV" in caught.value.hint


@responses.activate
def test_not_found_and_throttling_and_outages_are_typed(client, token):
    responses.get(f"{INVOICES}/9", status=404, json={"title": "Not Found"})
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    responses.post(INVOICES, status=429, headers={"Retry-After": in_a_minute})
    responses.get(f"{INVOICES}/8", status=502)
    with pytest.raises(NotFoundError):
        client.get("receivablesInvoices/9")
    with pytest.raises(TransientError) as throttled:
        client.post("receivablesInvoices", json={})
    assert 50 < throttled.value.retry_after <= 60
    with pytest.raises(TransientError, match="unavailable"):
        client.get("receivablesInvoices/8")


@responses.activate
def test_a_non_json_success_is_a_permanent_error(client, token):
    responses.get(INVOICES, body="<html>login</html>", content_type="text/html")
    with pytest.raises(PermanentError, match="not JSON"):
        client.get("receivablesInvoices")


# --- basic auth and exchanges -------------------------------------------------------------------------------


@responses.activate
def test_basic_auth_is_the_alternative_and_a_401_is_not_retried():
    connection = make_connection(
        fusion_auth=Connection.FusionAuth.BASIC,
        fusion_username="integration.user",
        fusion_password="basic-password-value",
    )
    client = FusionClient.for_connection(connection)
    ok = responses.get(
        INVOICES,
        json={"items": []},
        match=[
            matchers.header_matcher({"Authorization": "Basic aW50ZWdyYXRpb24udXNlcjpiYXNpYy1wYXNzd29yZC12YWx1ZQ=="})
        ],
    )
    assert client.get("receivablesInvoices") == {"items": []}
    assert ok.call_count == 1
    responses.post(INVOICES, status=401, body="")
    with pytest.raises(AuthError, match="refused the credentials") as caught:
        client.post("receivablesInvoices", json={})
    assert "username or password" in caught.value.hint
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1
    assert "basic-password-value" not in str(client.exchanges)


@responses.activate
def test_exchanges_record_token_and_api_calls_redacted(client, token):
    responses.get(INVOICES, json={"items": [{"TransactionNumber": "MAG-1"}]})
    client.get("receivablesInvoices")
    taken = client.take_exchanges()
    assert [(e["method"], e["status"]) for e in taken] == [("POST", 200), ("GET", 200)]
    text = str(taken)
    assert "eyJ-token-1" not in text
    assert "fusion-client-secret-value" not in text
    assert "MAG-1" in taken[1]["response_body"]
    assert client.exchanges == []


def test_client_repr_has_no_secret(client):
    assert "secret" not in repr(client).lower()
    assert "fusion-client-secret-value" not in repr(client.auth)


@responses.activate
def test_the_tax_fusion_holds_is_read_back_with_the_lines_and_tax_lines_expanded(client, token):
    read = responses.get(
        f"{INVOICES}/300100170996427",
        match=[
            matchers.query_param_matcher(
                {"expand": "receivablesInvoiceLines.receivablesInvoiceLineTaxLines", "onlyData": "true"}
            )
        ],
        json={
            "CustomerTransactionId": 300100170996427,
            # REST framework 3+ answers an expanded child as a collection; a list is read as well.
            "receivablesInvoiceLines": {
                "items": [
                    {
                        "LineNumber": 1,
                        "receivablesInvoiceLineTaxLines": {"items": [{"TaxAmount": 62.5}, {"TaxAmount": 20}]},
                    },
                    {"LineNumber": 2, "receivablesInvoiceLineTaxLines": [{"TaxAmount": "0.60"}]},
                    {"LineNumber": 3},
                ]
            },
        },
    )
    tax = client.receivables_tax("receivablesInvoices", "300100170996427")
    assert (tax.transaction_id, tax.tax_total, tax.tax_lines) == ("300100170996427", Decimal("83.10"), 3)
    assert read.call_count == 1
    memo = responses.get(
        f"{API}/receivablesCreditMemos/77",
        json={"receivablesCreditMemoLines": [{"receivablesCreditMemoLineTaxLines": [{"TaxAmount": -8.25}]}]},
    )
    assert client.receivables_tax("receivablesCreditMemos", "77").tax_total == Decimal("8.25")
    assert "expand=receivablesCreditMemoLines.receivablesCreditMemoLineTaxLines" in memo.calls[0].request.url


@responses.activate
def test_a_ledger_is_read_with_its_currency(client, token):
    responses.get(
        f"{API}/ledgersLOV/300000046975971",
        json={"LedgerId": 300000046975971, "Name": "US Primary", "CurrencyCode": "usd"},
    )
    ledger = client.ledger("300000046975971")
    assert (ledger.ledger_id, ledger.name, ledger.currency) == ("300000046975971", "US Primary", "USD")
