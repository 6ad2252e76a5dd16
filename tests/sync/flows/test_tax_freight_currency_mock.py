"""The same tax, freight and currency cases through the posting pipeline in-process against the mock Fusion, which
refuses what Oracle does not document (mocks/fusion/shapes.py) and computes the tax in the fusion mode."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.core.cache import cache

from connector.models import Connection, Record
from connector.records import record_accept
from mappings.models import TaxRule
from sync.flows.sales_documents import record_process
from tests import mockservers
from tests.mockservers import mock_connection
from tests.posting import order_document, seed_mappings
from tests.sync.flows.test_tax_freight_currency import rest_order, taxed, texas_rules

fusion_mock = mockservers.fusion_mock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local_endpoints", "token_cache")]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0
    cache.clear()


@pytest.fixture
def connection(fusion_mock):
    conn = mock_connection(fusion_mock, retry_base_seconds=0, retry_cap_seconds=0)
    seed_mappings(conn)
    return conn


def _run(connection, document) -> Record:
    record = record_accept(connection=connection, document=document).record
    record_process(record_id=record.pk)
    record.refresh_from_db()
    return record


def _stored(mock, record, collection="invoices"):
    return getattr(mock, collection).rows[record.fusion_transaction_id]


def test_manual_tax_lines_with_the_mapped_codes_are_accepted(connection, fusion_mock):
    texas_rules(connection)
    record = _run(connection, rest_order())
    assert record.state == Record.State.POSTED, record.last_error
    lines = _stored(fusion_mock, record)["receivablesInvoiceLines"]
    assert [t["TaxRateCode"] for t in lines[0]["receivablesInvoiceLineTaxLines"]] == ["TX_STATE", "AUSTIN_CITY"]
    assert fusion_mock.state()["rejected_creates"] == 0


def test_a_tax_without_a_rule_is_parked_before_fusion_is_asked(connection, fusion_mock):
    TaxRule.objects.filter(connection=connection).delete()
    record = _run(connection, taxed(order_document()))
    assert record.state == Record.State.NEEDS_REVIEW and "no tax rule matches" in record.last_error
    assert fusion_mock.state()["invoices"] == 0


@pytest.mark.parametrize(("classification", "posted"), [("US_STD", True), ("VAT20", False)])
def test_fusion_tax_mode_posts_an_equal_tax_and_parks_a_difference(connection, fusion_mock, classification, posted):
    Connection.objects.filter(pk=connection.pk).update(tax_mode="fusion")
    TaxRule.objects.filter(connection=connection).update(tax_classification_code=classification)
    record = _run(connection, taxed(order_document(lines=(("LAP-15", "1", "100.00"),), shipping="0")))
    if posted:
        assert record.state == Record.State.POSTED, record.last_error
    else:
        assert record.state == Record.State.NEEDS_REVIEW
        assert "Fusion computed tax of 20.00 USD" in record.last_error and "Commerce charged 8.25" in record.last_error
    assert fusion_mock.state()["invoices"] == 1


@pytest.mark.parametrize("mode", ["allocated", "header"])
def test_freight_in_either_mode_is_accepted_and_totals_the_grand_total(connection, fusion_mock, mode):
    Connection.objects.filter(pk=connection.pk).update(freight_mode=mode)
    document = order_document(lines=(("LAP-15", "1", "100.00"), ("MOUSE", "3", "10.00")), shipping="9.99")
    record = _run(connection, document)
    assert record.state == Record.State.POSTED, record.last_error
    stored = _stored(fusion_mock, record)
    lines = stored["receivablesInvoiceLines"]
    billed = sum(Decimal(str(ln["Quantity"])) * Decimal(str(ln["UnitSellingPrice"])) for ln in lines)
    billed += sum(Decimal(str(ln.get("AllocatedFreightAmount", 0))) for ln in lines)
    billed += Decimal(str(stored.get("FreightAmount") or 0))
    assert billed == document.grand_total


@pytest.mark.parametrize("rate_type", ["Corporate", "Spot", "User"])
def test_a_eur_order_into_the_usd_ledger_is_accepted_with_its_conversion(connection, fusion_mock, rate_type):
    Connection.objects.filter(pk=connection.pk).update(conversion_rate_type=rate_type)
    document = dataclasses.replace(
        order_document(currency="EUR"), base_currency="USD", base_to_order_rate=Decimal("0.8")
    )
    record = _run(connection, document)
    assert record.state == Record.State.POSTED, record.last_error
    assert _stored(fusion_mock, record)["ConversionRateType"] == rate_type


def test_a_credit_memo_with_tax_and_freight_is_accepted(connection, fusion_mock):
    _run(connection, order_document())
    memo = order_document("77", kind="creditmemo", order_entity_id="12345", lines=(("LAP-15", "1", "1299.99"),))
    memo = dataclasses.replace(
        taxed(memo, "107.25"), shipping_tax=Decimal("0.83"), grand_total=memo.grand_total + Decimal("108.08")
    )
    record = _run(connection, memo)
    assert record.state == Record.State.POSTED, record.last_error
    stored = _stored(fusion_mock, record, "credit_memos")
    assert stored["FreightCreditAmount"] == -10
    taxes = stored["receivablesCreditMemoLines"][0]["receivablesCreditMemoLineTaxLines"]
    assert [t["TaxAmount"] for t in taxes] == [-107.25, -0.83]
