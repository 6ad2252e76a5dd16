"""The mock Fusion answers as Oracle documents Fusion does (REST API for Oracle Fusion Cloud Financials): the
identity domain's token endpoint /oauth2/v1/token, Bearer checks, receivablesInvoices with duplicate-number
rejection, q expressions, paging, reference LOVs, FBDI import jobs through erpintegrations, and injected faults.
The mock_* commands' shared behaviour is tested here too."""

import base64
import csv
import io
import socket
import zipfile
from datetime import date
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from fusion import fbdi
from mocks.fusion import MockFusion, parse_q
from mocks.server import MockServer
from tests import mockservers
from tests.mockservers import SEED, running

fusion_mock = mockservers.fusion_mock

VERSION_ROOT = "/fscmRestApi/resources/11.13.18.05"
SCOPE = "urn:opc:resource:consumer::all"


def get_token(mock, *, client_id="mock-fusion-client", secret="mock-fusion-secret", scope=SCOPE):
    return requests.post(
        f"{mock.url}/oauth2/v1/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials", "scope": scope},
        timeout=10,
    )


def api(mock, token=None):
    session = requests.Session()
    session.headers.update({"Accept": "application/json", "REST-Framework-Version": "4"})
    if token is None:
        token = get_token(mock).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    session.root = f"{mock.url}{VERSION_ROOT}"  # type: ignore[attr-defined]
    return session


def invoice(number="MAG-000000001", **overrides):
    body = {
        "BusinessUnit": "Vision Operations",
        "TransactionSource": "COMMERCE_WEB",
        "TransactionType": "Invoice",
        "TransactionNumber": number,
        "TransactionDate": "2026-11-01",
        "AccountingDate": "2026-11-01",
        "BillToCustomerNumber": "1008",
        "BillToSite": "1042",
        "PaymentTerms": "Immediate",
        "InvoiceCurrencyCode": "USD",
        "receivablesInvoiceLines": [
            {"LineNumber": 1, "Description": "WS12-M-Orange Radiant Tee", "Quantity": 1, "UnitSellingPrice": 22},
            {"LineNumber": 2, "Description": "Shipping", "Quantity": 1, "UnitSellingPrice": 5},
        ],
        "receivablesInvoiceDistributions": [
            {
                "InvoiceLineNumber": 1,
                "AccountClass": "Revenue",
                "AccountCombination": "01-000-4110-0000-000",
                "Percent": 100,
            },
            {
                "InvoiceLineNumber": 2,
                "AccountClass": "Revenue",
                "AccountCombination": "01-000-4510-0000-000",
                "Percent": 100,
            },
            {"AccountClass": "Receivable", "AccountCombination": "01-000-1210-0000-000", "Percent": 100},
        ],
    }
    body.update(overrides)
    return body


def detail(response):
    return response.json()["o:errorDetails"][0]["detail"]


# --- token endpoint and auth -----------------------------------------------------------------------------------


def test_token_endpoint_issues_bearer_tokens_with_the_configured_lifetime():
    with running(MockFusion(token_lifetime=120)) as mock:
        answer = get_token(mock)
        assert answer.status_code == 200
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 120 and body["access_token"]
        assert mock.state()["token_requests"] == 1


def test_token_endpoint_refuses_a_wrong_secret_as_invalid_client(fusion_mock):
    answer = get_token(fusion_mock, secret="wrong")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_token_endpoint_refuses_an_unknown_client_id(fusion_mock):
    assert get_token(fusion_mock, client_id="someone-else").json()["error"] == "invalid_client"


def test_token_endpoint_refuses_a_wrong_scope_as_invalid_scope(fusion_mock):
    answer = get_token(fusion_mock, scope="urn:opc:resource:fa:instanceid=1")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


def test_token_endpoint_needs_the_client_credentials_grant(fusion_mock):
    answer = requests.post(
        f"{fusion_mock.url}/oauth2/v1/token",
        auth=("mock-fusion-client", "mock-fusion-secret"),
        data={"grant_type": "password", "scope": SCOPE},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_api_calls_need_a_valid_bearer_token(fusion_mock):
    url = f"{fusion_mock.url}{VERSION_ROOT}/receivablesInvoices"
    assert requests.get(url, timeout=10).status_code == 401
    assert api(fusion_mock, token="made-up").get(url, timeout=10).status_code == 401
    assert api(fusion_mock).get(url, timeout=10).status_code == 200


def test_a_token_stops_working_when_its_lifetime_ends(fusion_mock):
    fusion_mock.set_faults(token_lifetime=60)
    session = api(fusion_mock)
    url = f"{session.root}/receivablesInvoices"
    assert session.get(url, timeout=10).status_code == 200
    fusion_mock.advance(61)
    answer = session.get(url, timeout=10)
    assert answer.status_code == 401
    assert "expired" in detail(answer)


def test_basic_auth_is_accepted_only_when_configured(fusion_mock):
    url = f"{fusion_mock.url}{VERSION_ROOT}/accountCombinationsLOV"
    assert requests.get(url, auth=("integration.user", "pw"), timeout=10).status_code == 401
    with running(MockFusion(basic_users={"integration.user": "pw"})) as mock:
        url = f"{mock.url}{VERSION_ROOT}/accountCombinationsLOV"
        assert requests.get(url, auth=("integration.user", "pw"), timeout=10).status_code == 200
        assert requests.get(url, auth=("integration.user", "nope"), timeout=10).status_code == 401


def test_user_without_role_mode_answers_403_with_a_v4_error(fusion_mock):
    fusion_mock.set_faults(forbid=True)
    answer = api(fusion_mock).get(f"{fusion_mock.url}{VERSION_ROOT}/receivablesInvoices", timeout=10)
    assert answer.status_code == 403
    assert answer.json()["title"] == "Forbidden" and answer.json()["o:errorDetails"]


def test_errors_are_plain_text_below_rest_framework_version_4(fusion_mock):
    session = api(fusion_mock)
    del session.headers["REST-Framework-Version"]
    answer = session.get(f"{session.root}/receivablesInvoices/1", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "does not exist" in answer.text


def test_an_unpinned_version_is_not_found(fusion_mock):
    session = api(fusion_mock)
    assert session.get(f"{fusion_mock.url}/fscmRestApi/resources/receivablesInvoices", timeout=10).status_code == 404


# --- receivables invoices ---------------------------------------------------------------------------------------


def test_invoice_create_answers_201_with_the_customer_transaction_id(fusion_mock):
    session = api(fusion_mock)
    answer = session.post(f"{session.root}/receivablesInvoices", json=invoice(), timeout=10)
    assert answer.status_code == 201
    created = answer.json()
    assert isinstance(created["CustomerTransactionId"], int)
    assert answer.headers["Location"].endswith(f"/receivablesInvoices/{created['CustomerTransactionId']}")
    assert created["TransactionNumber"] == "MAG-000000001" and created["InvoiceStatus"] == "Incomplete"
    fetched = session.get(answer.headers["Location"], timeout=10).json()
    assert fetched["BillToCustomerNumber"] == "1008"
    assert fusion_mock.state()["invoices_created"] == 1


def test_a_duplicate_transaction_number_in_the_same_source_and_unit_is_rejected(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/receivablesInvoices"
    assert session.post(url, json=invoice(), timeout=10).status_code == 201
    again = session.post(url, json=invoice(), timeout=10)
    assert again.status_code == 400
    assert "already exists" in detail(again) and "MAG-000000001" in detail(again)
    assert again.json()["o:errorDetails"][0]["o:errorPath"] == "TransactionNumber"
    other_source = session.post(url, json=invoice(TransactionSource="MANUAL"), timeout=10)
    assert other_source.status_code == 201
    assert fusion_mock.state()["invoices"] == 2


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"BusinessUnit": None}, "BusinessUnit is required"),
        ({"BillToCustomerNumber": "9999"}, "customer account 9999 is not valid"),
        ({"BillToAccountNumber": "1008"}, "BillToAccountNumber is not found"),
        ({"CustomerTransactionId": 1}, "read-only"),
        ({"TransactionDate": "14/03/2026"}, "not valid (YYYY-MM-DD)"),
        ({"receivablesInvoiceLines": []}, "At least one line"),
    ],
)
def test_invoice_header_validation(fusion_mock, change, words):
    session = api(fusion_mock)
    answer = session.post(f"{session.root}/receivablesInvoices", json=invoice(**change), timeout=10)
    assert answer.status_code == 400
    assert words in detail(answer)
    assert fusion_mock.state()["invoices"] == 0


@pytest.mark.parametrize(
    ("distribution", "words"),
    [
        ({"AccountClass": "REV", "AccountCombination": "01-000-4110-0000-000"}, "account class 'REV' is not valid"),
        ({"AccountClass": "Revenue", "AccountCombination": "01-000-4999-0000-000"}, "is disabled"),
        ({"AccountClass": "Revenue", "AccountCombination": "01-000-4998-0000-000"}, "is not active on 2026-11-01"),
        ({"AccountClass": "Revenue", "AccountCombination": "01-000-4000-0000-000"}, "does not allow detail posting"),
        ({"AccountClass": "Revenue", "AccountCombination": "99-999-9999-9999-999"}, "is not valid"),
        (
            {"AccountClass": "Revenue", "AccountCombination": "01-000-4110-0000-000", "InvoiceLineNumber": 7},
            "line number 7",
        ),
    ],
)
def test_invoice_distributions_are_checked_against_the_known_combinations(fusion_mock, distribution, words):
    session = api(fusion_mock)
    body = invoice(receivablesInvoiceDistributions=[distribution])
    answer = session.post(f"{session.root}/receivablesInvoices", json=body, timeout=10)
    assert answer.status_code == 400
    assert words in detail(answer)


def test_invoice_look_up_by_q_finds_only_the_matching_number(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/receivablesInvoices"
    for number in ("MAG-1", "MAG-2", "O'BRIEN-3"):
        assert session.post(url, json=invoice(number), timeout=10).status_code == 201
    found = session.get(
        url,
        params={
            "q": "TransactionNumber='MAG-2' and TransactionSource='COMMERCE_WEB' and BusinessUnit='Vision Operations'",
            "onlyData": "true",
        },
        timeout=10,
    ).json()
    assert [i["TransactionNumber"] for i in found["items"]] == ["MAG-2"]
    assert "links" not in found["items"][0] and "receivablesInvoiceLines" not in found["items"][0]
    quoted = session.get(url, params={"q": "TransactionNumber='O''BRIEN-3'"}, timeout=10).json()
    assert [i["TransactionNumber"] for i in quoted["items"]] == ["O'BRIEN-3"]


def test_a_quoted_value_cannot_extend_the_filter(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/receivablesInvoices"
    session.post(url, json=invoice("MAG-1"), timeout=10)
    escaped = session.get(url, params={"q": "TransactionNumber='x'' or TransactionNumber!='''"}, timeout=10)
    assert escaped.status_code == 200 and escaped.json()["items"] == []
    unescaped = session.get(url, params={"q": "TransactionNumber='x' or TransactionNumber!=''"}, timeout=10)
    assert unescaped.status_code == 400


def test_q_parsing_handles_escapes_bare_values_and_rejects_the_v1_separator():
    clauses = parse_q("TransactionNumber='It''s' and LastUpdateDate > 2026-01-01T00:00:00+00:00 and Name like 'A%'")
    assert [(c.attr, c.op, c.value) for c in clauses] == [
        ("TransactionNumber", "=", "It's"),
        ("LastUpdateDate", ">", "2026-01-01T00:00:00+00:00"),
        ("Name", "like", "A%"),
    ]
    with pytest.raises(Exception, match="not valid"):
        parse_q("TransactionNumber=1;BusinessUnit=2")


def test_q_on_an_unknown_attribute_is_a_400(fusion_mock):
    session = api(fusion_mock)
    answer = session.get(f"{session.root}/receivablesInvoices", params={"q": "Nope='1'"}, timeout=10)
    assert answer.status_code == 400 and "Nope" in detail(answer)


def test_patch_completes_an_invoice_and_refuses_other_attributes(fusion_mock):
    session = api(fusion_mock)
    created = session.post(f"{session.root}/receivablesInvoices", json=invoice(), timeout=10).json()
    url = f"{session.root}/receivablesInvoices/{created['CustomerTransactionId']}"
    done = session.patch(url, json={"InvoiceStatus": "Complete"}, timeout=10)
    assert done.status_code == 200 and done.json()["InvoiceStatus"] == "Complete"
    assert session.get(url, timeout=10).json()["InvoiceStatus"] == "Complete"
    refused = session.patch(url, json={"BillToCustomerNumber": "20001"}, timeout=10)
    assert refused.status_code == 400 and "cannot be updated" in detail(refused)
    assert (
        session.patch(
            f"{session.root}/receivablesInvoices/1", json={"InvoiceStatus": "Complete"}, timeout=10
        ).status_code
        == 404
    )


def test_credit_memo_create_and_look_up(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/receivablesCreditMemos"
    body = {
        "BusinessUnit": "Vision Operations",
        "TransactionSource": "COMMERCE_WEB",
        "TransactionType": "Credit Memo",
        "TransactionNumber": "MAG-CM-000000001",
        "TransactionDate": "2026-11-03",
        "CreditMemoCurrency": "USD",
        "BillToCustomerNumber": "1008",
        "receivablesCreditMemoLines": [
            {"LineNumber": 1, "LineDescription": "Refund 24-MB01", "LineQuantityCredit": 1, "UnitSellingPrice": -34}
        ],
    }
    created = session.post(url, json=body, timeout=10)
    assert created.status_code == 201
    assert session.post(url, json=body, timeout=10).status_code == 400
    found = session.get(url, params={"q": "TransactionNumber='MAG-CM-000000001'"}, timeout=10).json()
    assert found["count"] == 1
    positive = dict(
        body,
        TransactionNumber="MAG-CM-2",
        receivablesCreditMemoLines=[
            {"LineNumber": 1, "LineDescription": "x", "LineQuantityCredit": 1, "UnitSellingPrice": 34}
        ],
    )
    assert "must be negative" in detail(session.post(url, json=positive, timeout=10))
    assert fusion_mock.state()["credit_memos_created"] == 1


# --- paging and reference data ----------------------------------------------------------------------------------


def test_paging_walks_every_row_once_and_stops_at_has_more_false(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/accountCombinationsLOV"
    seen, offset, pages = [], 0, 0
    while True:
        page = session.get(
            url,
            params={"limit": 5, "offset": offset, "orderBy": "_CODE_COMBINATION_ID", "onlyData": "true"},
            timeout=10,
        ).json()
        pages += 1
        assert page["limit"] == 5 and page["offset"] == offset and page["count"] == len(page["items"])
        seen += [row["_CODE_COMBINATION_ID"] for row in page["items"]]
        if not page["hasMore"]:
            break
        assert any(link["rel"] == "next" for link in page["links"])
        offset += page["count"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(fusion_mock.combinations.rows)
    assert pages == 3


def test_limit_is_capped_at_500_and_defaults_to_25(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/itemsV2"
    assert session.get(url, params={"limit": 5000}, timeout=10).json()["limit"] == 500
    assert session.get(url, timeout=10).json()["limit"] == 25


def test_account_combinations_carry_flags_dates_and_segments(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/accountCombinationsLOV"
    disabled = session.get(url, params={"q": "EnabledFlag='N'"}, timeout=10).json()["items"]
    assert [(r["Company"], r["Department"], r["Account"], r["SubAccount"], r["Product"]) for r in disabled] == [
        ("01", "000", "4999", "0000", "000")
    ]
    by_key = session.get(url, params={"finder": "PrimaryKey;_CODE_COMBINATION_ID=626911"}, timeout=10).json()
    assert by_key["items"][0]["EndDateActive"] == "2020-12-31"
    one = session.get(f"{url}/626904", timeout=10).json()
    assert one["Account"] == "4110" and one["StartDateActive"] == "2015-01-01"


def test_customer_account_sites_by_account_number(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/customerAccountSitesLOV"
    sites = session.get(url, params={"q": "AccountNumber='1008'", "orderBy": "SiteUseId"}, timeout=10).json()
    assert [(s["SiteUseId"], s["SiteName"], s["CustomerName"]) for s in sites["items"]] == [
        (1042, "CSR Seattle", "Computer Service and Rentals"),
        (1043, "CSR Portland", "Computer Service and Rentals"),
    ]


def test_items_changed_since_a_watermark_in_update_order(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/itemsV2"
    params = {
        "q": "LastUpdateDateTime > '2026-10-01T00:00:00+00:00'",
        "orderBy": "LastUpdateDateTime,ItemId",
        "onlyData": "true",
    }
    before = [i["ItemNumber"] for i in session.get(url, params=params, timeout=10).json()["items"]]
    assert before == ["SKU-LAPTOP-15", "SKU-DOCK-USB4", "SKU-WARRANTY-2Y"]
    requests.post(
        f"{fusion_mock.url}/__mock__/rows/itemsV2",
        json={"ItemNumber": "WS12-M-Orange", "ItemStatusValue": "Inactive"},
        timeout=10,
    ).raise_for_status()
    after = session.get(url, params=params, timeout=10).json()["items"]
    assert after[-1]["ItemNumber"] == "WS12-M-Orange" and after[-1]["ItemStatusValue"] == "Inactive"
    link = session.get(url, params={"q": "ItemNumber='WS12-M-Orange'"}, timeout=10).json()["items"][0]["links"]
    assert session.get(link[0]["href"], timeout=10).json()["ItemStatusValue"] == "Inactive"


# --- erpintegrations (FBDI journal import) ----------------------------------------------------------------------


def _journal_payload(*, balanced=True, group_id=20261101001):
    header = fbdi.BatchHeader(
        ledger_id="300000046975971",
        source="Commerce",
        category="Sales",
        group_id=group_id,
        batch_name="COM-20261101",
        batch_description="Commerce daily",
        created_on=date(2026, 11, 1),
    )
    journal = fbdi.Journal(
        name="MAG-1",
        description="Order 1",
        accounting_date=date(2026, 11, 1),
        currency="USD",
        lines=[
            fbdi.JournalLine("01-000-1290-0000-000", Decimal("27.00"), None, "clearing"),
            fbdi.JournalLine("01-000-4110-0000-000", None, Decimal("27.00"), "revenue"),
        ],
    )
    rows = fbdi.gl_interface_rows(header, [journal])
    if not balanced:
        rows[1][fbdi.ENTERED_CR] = "26.00"
    return fbdi.import_bulk_data_payload(header, fbdi.gl_interface_zip(rows), "GlInterface_1.zip")


def _poll(session, request_id):
    answer = session.get(
        f"{session.root}/erpintegrations", params={"finder": f"ESSJobStatusRF;requestId={request_id}"}, timeout=10
    ).json()
    return answer["items"][0]["RequestStatus"]


def test_import_bulk_data_runs_then_succeeds_and_keeps_the_rows(fusion_mock):
    fusion_mock.set_faults(ess_running_polls=2)
    session = api(fusion_mock)
    payload = _journal_payload()
    answer = session.post(f"{session.root}/erpintegrations", json=payload, timeout=10)
    assert answer.status_code == 201
    request_id = answer.json()["ReqstId"]
    assert [_poll(session, request_id) for _ in range(4)] == ["RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]
    job = requests.get(f"{fusion_mock.url}/__mock__/erp_jobs/{request_id}", timeout=10).json()
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(payload["DocumentContent"])))
    sent = list(csv.reader(io.StringIO(archive.read("GlInterface.csv").decode())))
    assert job["rows"] == sent and job["imported_rows"] == 2


def test_an_unbalanced_journal_ends_the_import_in_error(fusion_mock):
    fusion_mock.set_faults(ess_running_polls=0)
    session = api(fusion_mock)
    request_id = session.post(
        f"{session.root}/erpintegrations", json=_journal_payload(balanced=False), timeout=10
    ).json()["ReqstId"]
    assert _poll(session, request_id) == "ERROR"
    assert "does not balance" in fusion_mock.state()["erp_jobs"][request_id]["reasons"][0]


def test_rows_of_another_group_are_not_imported(fusion_mock):
    fusion_mock.set_faults(ess_running_polls=0)
    session = api(fusion_mock)
    payload = _journal_payload()
    payload["ParameterList"] = payload["ParameterList"].replace("20261101001", "999")
    request_id = session.post(f"{session.root}/erpintegrations", json=payload, timeout=10).json()["ReqstId"]
    assert _poll(session, request_id) == "ERROR"


def test_a_dropped_import_request_still_starts_the_job(fusion_mock):
    session = api(fusion_mock)
    fusion_mock.set_faults(drop_after_commit_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(f"{session.root}/erpintegrations", json=_journal_payload(), timeout=10)
    assert len(fusion_mock.erp_jobs) == 1 and fusion_mock.state()["dropped_after_commit"] == 1


def test_import_jobs_end_in_error_when_configured(fusion_mock):
    fusion_mock.set_faults(ess_running_polls=1, ess_error=True)
    session = api(fusion_mock)
    request_id = session.post(f"{session.root}/erpintegrations", json=_journal_payload(), timeout=10).json()["ReqstId"]
    assert [_poll(session, request_id), _poll(session, request_id)] == ["RUNNING", "ERROR"]


# --- faults and the control surface -----------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(fusion_mock):
    session = api(fusion_mock)
    fusion_mock.set_faults(rate_limit=1.0, retry_after=7)
    answer = session.get(f"{session.root}/itemsV2", timeout=10)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"


def test_an_outage_answers_503_until_it_is_over(fusion_mock):
    session = api(fusion_mock)
    url = f"{session.root}/itemsV2"
    requests.post(f"{fusion_mock.url}/__mock__/faults", json={"outage": 30}, timeout=10).raise_for_status()
    first = session.get(url, timeout=10)
    assert first.status_code == 503 and 1 <= int(first.headers["Retry-After"]) <= 30
    requests.post(f"{fusion_mock.url}/__mock__/clock", json={"advance": 31}, timeout=10).raise_for_status()
    fusion_mock.set_faults(token_lifetime=3600)
    assert api(fusion_mock).get(url, timeout=10).status_code == 200


def test_fail_next_scripts_the_next_answers(fusion_mock):
    session = api(fusion_mock)
    fusion_mock.set_faults(fail_next=[503, 429])
    url = f"{session.root}/itemsV2"
    assert [session.get(url, timeout=10).status_code for _ in range(3)] == [503, 429, 200]


def test_random_errors_are_reproducible_with_a_seed():
    def statuses():
        with running(MockFusion(seed=SEED)) as mock:
            session = api(mock)
            mock.set_faults(error_rate=0.5)
            return [session.get(f"{session.root}/itemsV2", timeout=10).status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert {200, 500} <= set(first) or {200, 503} <= set(first)


def test_latency_is_added_to_every_request(fusion_mock, monkeypatch):
    slept = []
    monkeypatch.setattr("mocks.server.time.sleep", slept.append)
    fusion_mock.set_faults(latency_ms=250)
    requests.get(f"{fusion_mock.url}{VERSION_ROOT}/itemsV2", timeout=10)
    assert slept == [0.25]


def test_drop_after_commit_creates_the_invoice_but_never_answers(fusion_mock):
    session = api(fusion_mock)
    fusion_mock.set_faults(drop_after_commit_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(f"{session.root}/receivablesInvoices", json=invoice("MAG-DROP"), timeout=10)
    fusion_mock.set_faults(drop_after_commit_rate=0.0)
    found = (
        api(fusion_mock)
        .get(f"{session.root}/receivablesInvoices", params={"q": "TransactionNumber='MAG-DROP'"}, timeout=10)
        .json()
    )
    assert found["count"] == 1
    assert fusion_mock.state()["dropped_after_commit"] == 1


def test_state_counts_requests_by_path_and_reset_restores_the_seed(fusion_mock):
    session = api(fusion_mock)
    session.post(f"{session.root}/receivablesInvoices", json=invoice(), timeout=10)
    session.get(f"{session.root}/itemsV2", timeout=10)
    requests.post(f"{fusion_mock.url}/__mock__/faults", json={"forbid": True}, timeout=10)
    state = requests.get(f"{fusion_mock.url}/__mock__/state", timeout=10).json()
    assert state["invoices_created"] == 1 and state["token_requests"] == 1
    assert state["requests_by_path"][f"{VERSION_ROOT}/receivablesInvoices"] == 1
    assert state["faults"]["forbid"] is True
    reset = requests.post(f"{fusion_mock.url}/__mock__/reset", timeout=10).json()
    assert reset["invoices"] == 0 and reset["requests"] == 0 and reset["faults"]["forbid"] is False


def test_bad_fault_settings_are_refused(fusion_mock):
    answer = requests.post(f"{fusion_mock.url}/__mock__/faults", json={"error_rate": 2}, timeout=10)
    assert answer.status_code == 400 and "error_rate" in answer.json()["error"]
    assert requests.post(f"{fusion_mock.url}/__mock__/faults", json={"nonsense": 1}, timeout=10).status_code == 400


def test_the_command_starts_the_mock_with_its_flags(monkeypatch):
    started = {}

    def fake_serve(self, host, port):
        started.update(mock=self, host=host, port=port)

    monkeypatch.setattr(MockServer, "serve_forever", fake_serve)
    call_command(
        "mock_fusion",
        "--port",
        "8899",
        "--client-secret",
        "s3",
        "--rate-limit",
        "0.25",
        "--seed",
        "5",
        "--ess-running-polls",
        "4",
        "--forbid",
        "--basic-user",
        "u:p",
        stdout=io.StringIO(),
    )
    mock = started["mock"]
    assert (started["host"], started["port"]) == ("127.0.0.1", 8899)
    assert mock.client_secret == "s3" and mock.basic_users == {"u": "p"}
    assert mock.faults.rate_limit == 0.25 and mock.faults.ess_running_polls == 4 and mock.faults.forbid is True


@pytest.mark.parametrize("command", ["mock_fusion", "mock_commerce"])
def test_a_mock_command_says_where_it_listens_and_stops_on_ctrl_c(monkeypatch, command):
    def interrupted(self, host, port):
        raise KeyboardInterrupt

    monkeypatch.setattr(MockServer, "serve_forever", interrupted)
    out = io.StringIO()
    call_command(command, "--port", "8897", stdout=out)
    printed = out.getvalue()
    assert printed.startswith("Mock ") and "http://127.0.0.1:8897\n" in printed
    assert "CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1" in printed
    assert printed.rstrip().endswith("Stopped.")


@pytest.mark.parametrize("command", ["mock_fusion", "mock_commerce"])
def test_a_mock_command_refuses_a_bad_fault_flag(monkeypatch, command):
    monkeypatch.setattr(MockServer, "serve_forever", lambda self, host, port: pytest.fail("must not serve"))
    with pytest.raises(CommandError, match="error_rate"):
        call_command(command, "--error-rate", "2", stdout=io.StringIO())


@pytest.mark.parametrize("command", ["mock_fusion", "mock_commerce"])
def test_a_mock_command_on_a_taken_port_says_so(command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"Cannot listen on 127.0.0.1:{port}"):
            call_command(command, "--port", str(port), stdout=io.StringIO())
