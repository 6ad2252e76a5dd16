"""The mock Fusion checks tax, freight and foreign currency as Oracle documents them (docs/reference/fusion.md §11):
a manual tax line names its regime and rate, freight is on a line (AllocatedFreightAmount) or at the header
(FreightAmount, with a Freight distribution without a line), a document not in the ledger currency names its
conversion rate type. In the fusion tax mode it computes the tax and answers it on a GET of the document."""

import dataclasses
from datetime import date

import pytest

from fusion import fbdi
from tests import mockservers
from tests.mocks.test_fusion import _poll, api, detail, invoice

fusion_mock = mockservers.fusion_mock

TAX = {"TaxRegimeCode": "US SALES AND USE TAX", "TaxRateCode": "STD", "TaxAmount": 1.82}
REVENUE = {"AccountClass": "Revenue", "AccountCombination": "01-000-4110-0000-000", "InvoiceLineNumber": 1}
FREIGHT = {"AccountClass": "Freight", "AccountCombination": "01-000-4520-0000-000"}


def one_line(**line):
    return [
        {"LineNumber": 1, "Description": "WS12-M-Orange Radiant Tee", "Quantity": 1, "UnitSellingPrice": 22, **line}
    ]


def post(mock, body, resource="receivablesInvoices"):
    session = api(mock)
    return session.post(f"{session.root}/{resource}", json=body, timeout=10)


def credit_memo(**overrides):
    body = {
        "BusinessUnit": "Vision Operations",
        "TransactionSource": "COMMERCE_WEB",
        "TransactionType": "Credit Memo",
        "TransactionNumber": "MAG-CM-1",
        "TransactionDate": "2026-11-01",
        "BillToCustomerNumber": "1008",
        "CreditMemoCurrency": "USD",
        "receivablesCreditMemoLines": [
            {"LineNumber": 1, "LineDescription": "Refund 24-MB01", "LineQuantityCredit": 1, "UnitSellingPrice": -34}
        ],
    }
    body.update(overrides)
    return body


# --- tax ----------------------------------------------------------------------------------------------------------


def test_a_manual_tax_line_with_its_regime_and_rate_codes_is_accepted_and_kept(fusion_mock):
    lines = one_line(TaxClassificationCode="US_STD", receivablesInvoiceLineTaxLines=[{**TAX, "Tax": "US SALES TAX"}])
    answer = post(fusion_mock, invoice(receivablesInvoiceLines=lines, receivablesInvoiceDistributions=[]))
    assert answer.status_code == 201, answer.text
    kept = answer.json()["receivablesInvoiceLines"][0]["receivablesInvoiceLineTaxLines"]
    assert kept == [{**TAX, "Tax": "US SALES TAX"}]


@pytest.mark.parametrize(
    ("tax", "words", "path"),
    [
        ({"TaxAmount": 1.82}, "needs a tax regime code, a tax rate code and a tax amount", "TaxRegimeCode"),
        ({"TaxAmount": 1.82, "TaxRegimeCode": "US SALES AND USE TAX"}, "TaxRateCode is missing", "TaxRateCode"),
        ({**TAX, "TaxRateCode": "VAT20"}, "isn't valid for the tax regime", "TaxRateCode"),
        ({**TAX, "Tax": "VAT"}, "isn't the one of tax rate code STD", "Tax"),
        ({**TAX, "TaxPercentage": 8.25}, "TaxPercentage is not found", ""),
    ],
)
def test_a_manual_tax_line_without_its_regime_and_rate_or_unknown_ones_is_refused(fusion_mock, tax, words, path):
    body = invoice(receivablesInvoiceLines=one_line(receivablesInvoiceLineTaxLines=[tax]))
    answer = post(fusion_mock, body)
    assert answer.status_code == 400
    assert words in detail(answer)
    error_path = answer.json()["o:errorDetails"][0]["o:errorPath"]
    assert error_path.startswith("receivablesInvoiceLines[0]/receivablesInvoiceLineTaxLines[0]")
    assert error_path.endswith(path)
    assert fusion_mock.state()["invoices"] == 0 and fusion_mock.state()["rejected_creates"] == 1


def test_an_unknown_classification_code_or_line_attribute_is_refused(fusion_mock):
    answer = post(fusion_mock, invoice(receivablesInvoiceLines=one_line(TaxClassificationCode="NOPE")))
    assert answer.status_code == 400 and "tax classification code NOPE" in detail(answer)
    answer = post(fusion_mock, invoice(receivablesInvoiceLines=one_line(FreightAmount=5)))
    assert answer.status_code == 400 and "FreightAmount is not found" in detail(answer)


def test_in_the_fusion_tax_mode_fusion_computes_the_tax_and_a_get_answers_it(fusion_mock):
    lines = one_line(TaxClassificationCode="US_STD", Quantity=2, UnitSellingPrice=50)
    answer = post(fusion_mock, invoice(receivablesInvoiceLines=lines, receivablesInvoiceDistributions=[]))
    assert answer.status_code == 201, answer.text
    session = api(fusion_mock)
    url = f"{session.root}/receivablesInvoices/{answer.json()['CustomerTransactionId']}"
    read = session.get(url, params={"expand": "receivablesInvoiceLines.receivablesInvoiceLineTaxLines"}, timeout=10)
    (tax,) = read.json()["receivablesInvoiceLines"][0]["receivablesInvoiceLineTaxLines"]
    assert (tax["TaxRateCode"], tax["TaxRate"], tax["TaxAmount"]) == ("STD", 8.25, 8.25)  # 100.00 at 8.25 %


def test_a_credit_memo_credits_tax_as_negative_tax_lines_and_refuses_a_positive_one(fusion_mock):
    refund = credit_memo()["receivablesCreditMemoLines"][0]
    good = credit_memo(
        receivablesCreditMemoLines=[{**refund, "receivablesCreditMemoLineTaxLines": [{**TAX, "TaxAmount": -2.81}]}]
    )
    assert post(fusion_mock, good, "receivablesCreditMemos").status_code == 201
    bad = credit_memo(
        TransactionNumber="MAG-CM-2",
        receivablesCreditMemoLines=[{**refund, "receivablesCreditMemoLineTaxLines": [TAX]}],
    )
    answer = post(fusion_mock, bad, "receivablesCreditMemos")
    assert answer.status_code == 400 and "must be negative" in detail(answer)


# --- freight ------------------------------------------------------------------------------------------------------


def test_freight_allocated_to_a_line_with_its_freight_distribution_is_accepted(fusion_mock):
    lines = one_line(AllocatedFreightAmount=5)
    dists = [{**REVENUE, "Amount": 22}, {**FREIGHT, "InvoiceLineNumber": 1, "Amount": 5}]
    answer = post(fusion_mock, invoice(receivablesInvoiceLines=lines, receivablesInvoiceDistributions=dists))
    assert answer.status_code == 201, answer.text


def test_freight_at_the_header_with_a_freight_distribution_without_a_line_is_accepted(fusion_mock):
    dists = [{**REVENUE, "Amount": 22}, {**FREIGHT, "Amount": 5}]
    body = invoice(FreightAmount=5, receivablesInvoiceLines=one_line(), receivablesInvoiceDistributions=dists)
    answer = post(fusion_mock, body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["FreightAmount"] == 5


@pytest.mark.parametrize(
    ("body", "words"),
    [
        # Shipping as an ordinary line carrying only a Freight distribution: the shape Oracle does not document.
        (
            {
                "receivablesInvoiceLines": [
                    *one_line(),
                    {"LineNumber": 2, "Description": "Shipping", "Quantity": 1, "UnitSellingPrice": 5},
                ],
                "receivablesInvoiceDistributions": [{**REVENUE, "Amount": 22}, {**FREIGHT, "InvoiceLineNumber": 2}],
            },
            "Line 2 has a Freight distribution but no freight",
        ),
        (
            {"receivablesInvoiceLines": one_line(), "receivablesInvoiceDistributions": [{**FREIGHT, "Amount": 5}]},
            "give the invoice its FreightAmount",
        ),
        (
            {"FreightAmount": 5, "receivablesInvoiceLines": one_line(AllocatedFreightAmount=5)},
            "not both",
        ),
        (
            {
                "receivablesInvoiceLines": one_line(AllocatedFreightAmount=5),
                "receivablesInvoiceDistributions": [{**FREIGHT, "InvoiceLineNumber": 1, "Amount": 4}],
            },
            "total 4, not its freight 5",
        ),
    ],
)
def test_freight_in_a_shape_oracle_does_not_document_is_refused(fusion_mock, body, words):
    answer = post(fusion_mock, invoice(**body))
    assert answer.status_code == 400
    assert words in detail(answer)


def test_a_credit_memo_credits_freight_at_its_header(fusion_mock):
    assert post(fusion_mock, credit_memo(FreightCreditAmount=-5), "receivablesCreditMemos").status_code == 201
    answer = post(fusion_mock, credit_memo(TransactionNumber="X", FreightCreditAmount=5), "receivablesCreditMemos")
    assert answer.status_code == 400 and "FreightCreditAmount must be a negative number" in detail(answer)


# --- foreign currency ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conversion", "status", "words"),
    [
        ({}, 400, "You can only create an invoice in the ledger currency."),
        ({"ConversionRateType": "Corporate", "ConversionDate": "2026-11-01"}, 201, ""),
        ({"ConversionRateType": "Spot", "ConversionDate": "2026-11-01"}, 201, ""),
        ({"ConversionRateType": "User", "ConversionDate": "2026-11-01", "ConversionRate": 1.25}, 201, ""),
        ({"ConversionRateType": "User", "ConversionDate": "2026-11-01"}, 400, "Enter a conversion rate"),
        ({"ConversionRateType": "Daily", "ConversionDate": "2026-11-01"}, 400, "Daily isn't valid"),
    ],
)
def test_a_eur_invoice_into_the_usd_ledger_needs_its_conversion_rate_type(fusion_mock, conversion, status, words):
    answer = post(fusion_mock, invoice(InvoiceCurrencyCode="EUR", **conversion))
    assert answer.status_code == status, answer.text
    if words:
        assert words in detail(answer)
    if not conversion:
        assert answer.json()["o:errorDetails"][0]["o:errorCode"] == "AR_FUNC_CURRENCY_REQ"


def test_a_eur_credit_memo_needs_its_conversion_too(fusion_mock):
    answer = post(fusion_mock, credit_memo(CreditMemoCurrency="EUR"), "receivablesCreditMemos")
    assert answer.status_code == 400 and "ledger currency" in detail(answer)
    body = credit_memo(CreditMemoCurrency="EUR", ConversionRateType="User", ConversionRate="0.8751")
    assert post(fusion_mock, body, "receivablesCreditMemos").status_code == 201


def test_a_journal_not_in_the_ledger_currency_is_imported_only_with_its_conversion(fusion_mock):
    fusion_mock.set_faults(ess_running_polls=0)
    session = api(fusion_mock)
    for conversion, expected in (({}, "ERROR"), ({"conversion_type": "Corporate"}, "SUCCEEDED")):
        header = fbdi.BatchHeader("300000046975971", "Commerce", "Sales", 20261101001, "B", "D", date(2026, 11, 1))
        journal = fbdi.Journal(
            name="MAG-1",
            description="Order 1",
            accounting_date=date(2026, 11, 1),
            currency="EUR",
            lines=[
                fbdi.JournalLine("01-000-1290-0000-000", 27, None, "clearing"),
                fbdi.JournalLine("01-000-4110-0000-000", None, 27, "revenue"),
            ],
        )
        rows = fbdi.gl_interface_rows(header, [dataclasses.replace(journal, **conversion)])
        payload = fbdi.import_bulk_data_payload(header, fbdi.gl_interface_zip(rows), "GlInterface_1.zip")
        request_id = session.post(f"{session.root}/erpintegrations", json=payload, timeout=10).json()["ReqstId"]
        assert _poll(session, request_id) == expected
        if expected == "ERROR":
            assert "has no conversion rate type" in fusion_mock.state()["erp_jobs"][request_id]["reasons"][0]


def test_the_ledger_and_its_currency_are_listed(fusion_mock):
    session = api(fusion_mock)
    ledger = session.get(f"{session.root}/ledgersLOV/300000046975971", timeout=10).json()
    assert (ledger["Name"], ledger["CurrencyCode"]) == ("Vision Operations (USA)", "USD")
    assert session.get(f"{session.root}/ledgersLOV/1", timeout=10).status_code == 404
