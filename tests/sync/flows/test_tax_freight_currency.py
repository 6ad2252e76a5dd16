"""Tax, freight and foreign currency through the posting pipeline, against Fusion's HTTP contract mocked with
`responses`: the body as Oracle documents it, a tax without a rule parked, the fusion tax mode's read-back."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.core.cache import cache

from audit.models import AuditEvent
from commerce.payloads import order_document as commerce_order
from connector.models import Connection, Record
from connector.records import record_accept
from fusion.invoices import payload_total
from fusion.models import JournalEntry
from mappings.models import TaxRule
from sync.flows.sales_documents import record_process
from sync.replay import record_replay
from tests.factories import make_connection
from tests.fake_fusion import FakeFusion
from tests.posting import order_document, seed_mappings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "commerce"
US = {"tax_regime_code": "US SALES AND USE TAX"}


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fusion():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFusion(rsps)


@pytest.fixture
def connection(db):
    conn = make_connection(transaction_number_prefix="MAG-", retry_base_seconds=0, retry_cap_seconds=0)
    seed_mappings(conn)
    return conn


def _run(connection, document) -> Record:
    record = record_accept(connection=connection, document=document).record
    record_process(record_id=record.pk)
    record.refresh_from_db()
    return record


def rest_order():
    """Texas state tax 6.25 % and Austin's 2 % on a laptop, Austin's alone on a snack, an exempt book, and the
    state tax on the shipping (tests/fixtures/commerce/order_rest_applied_taxes.json)."""
    return commerce_order(json.loads((FIXTURES / "order_rest_applied_taxes.json").read_text()))


def texas_rules(connection):
    TaxRule.objects.filter(connection=connection).delete()
    TaxRule.objects.create(
        connection=connection, match_type="tax_code", match_value="US-TX-*-Rate State", tax_rate_code="TX_STATE", **US
    )
    TaxRule.objects.create(
        connection=connection, match_type="tax_code", match_value="Austin City", tax_rate_code="AUSTIN_CITY", **US
    )
    TaxRule.objects.create(
        connection=connection, match_type="rate", match_value="0", country="US", tax_classification_code="US_EXEMPT"
    )


def taxed(document, tax="8.25"):
    line = dataclasses.replace(document.lines[0], tax=Decimal(tax), tax_percent=Decimal("8.25"))
    return dataclasses.replace(
        document, lines=(line, *document.lines[1:]), grand_total=document.grand_total + Decimal(tax)
    )


# --- tax ----------------------------------------------------------------------------------------------------------


def test_several_rates_and_the_shipping_tax_go_as_manual_tax_lines_with_the_mapped_codes(connection, fusion):
    texas_rules(connection)
    record = _run(connection, rest_order())
    assert record.state == Record.State.POSTED, record.last_error
    (body,) = fusion.posts
    laptop, book, snack = body["receivablesInvoiceLines"]
    assert [(t["TaxRateCode"], t["TaxAmount"]) for t in laptop["receivablesInvoiceLineTaxLines"]] == [
        ("TX_STATE", 62.5),
        ("AUSTIN_CITY", 20),
    ]
    assert book["TaxClassificationCode"] == "US_EXEMPT" and "receivablesInvoiceLineTaxLines" not in book
    assert [(t["TaxRateCode"], t["TaxAmount"]) for t in snack["receivablesInvoiceLineTaxLines"]] == [
        ("AUSTIN_CITY", 0.6),
        ("TX_STATE", 0.63),  # the shipping's
    ]
    assert all(
        t["TaxRegimeCode"] == "US SALES AND USE TAX"
        for ln in (laptop, snack)
        for t in ln["receivablesInvoiceLineTaxLines"]
    )
    assert payload_total(body) == Decimal("1163.73")


def test_a_tax_without_a_rule_parks_the_record_with_its_reason_and_sends_nothing(connection, fusion):
    TaxRule.objects.filter(connection=connection).delete()
    record = _run(connection, taxed(order_document()))
    assert record.state == Record.State.NEEDS_REVIEW
    assert "Line 1: no tax rule matches the Commerce tax at 8.25 %" in record.last_error
    assert "Mappings > Tax rules" in record.resolution_hint
    assert fusion.posts == []


def test_a_tax_inclusive_order_posts_the_tax_commerce_charged(connection, fusion):
    entity = json.loads((FIXTURES / "order_gift_card_tax_inclusive.json").read_text())["data"]["order"]
    connection.currency = "GBP"
    connection.save()
    TaxRule.objects.filter(connection=connection).update(
        tax_regime_code="FUS_STCC_REGIME-UES", tax_rate_code="VAT20", tax_classification_code="VAT20"
    )
    from mappings.models import AccountTemplate

    AccountTemplate.objects.create(
        connection=connection, account_class="prepayment", combination="01-000-1290-0000-000"
    )
    record = _run(connection, commerce_order(entity))
    assert record.state == Record.State.POSTED, record.last_error
    lines = fusion.posts[0]["receivablesInvoiceLines"]
    assert [[t["TaxAmount"] for t in ln.get("receivablesInvoiceLineTaxLines", [])] for ln in lines[:2]] == [
        [18],
        [4.05, 0.9],
    ]
    assert payload_total(fusion.posts[0]) == Decimal("100.00")


# --- the fusion tax mode ------------------------------------------------------------------------------------------


def test_fusion_tax_mode_posts_when_fusions_tax_equals_commerces(connection, fusion):
    Connection.objects.filter(pk=connection.pk).update(tax_mode="fusion")
    record = _run(connection, taxed(order_document(lines=(("LAP-15", "1", "100.00"),), shipping="0")))
    assert record.state == Record.State.POSTED, record.last_error
    (line,) = fusion.posts[0]["receivablesInvoiceLines"]
    assert line["TaxClassificationCode"] == "US_STD" and "receivablesInvoiceLineTaxLines" not in line
    checked = AuditEvent.objects.get(action="record.tax_checked", target_id=str(record.pk))
    assert (checked.data["fusion_tax"], checked.data["commerce_tax"]) == ("8.25", "8.25")


def test_fusion_tax_mode_parks_a_difference_with_both_figures_and_a_replay_reads_the_tax_again(connection, fusion):
    Connection.objects.filter(pk=connection.pk).update(tax_mode="fusion")
    fusion.computed_tax_rate = Decimal("10")
    record = _run(connection, taxed(order_document(lines=(("LAP-15", "1", "100.00"),), shipping="0")))
    assert record.state == Record.State.NEEDS_REVIEW
    assert record.last_error == (
        "Fusion computed tax of 10.00 USD on invoice MAG-000012345 (id 300100000), but Commerce charged 8.25: a "
        "difference of 1.75, more than the tolerance of 0.01."
    )
    assert record.fusion_transaction_id == "300100000"  # the invoice exists: never created again
    fusion.computed_tax_rate = Decimal("8.25")  # Finance corrected the tax in Fusion
    record_replay(record=record, actor="finance@example.com", reason="tax corrected in Fusion")
    record_process(record_id=record.pk)
    record.refresh_from_db()
    assert record.state == Record.State.POSTED, record.last_error
    assert len(fusion.posts) == 1


# --- freight ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["allocated", "header"])
def test_freight_goes_in_the_connections_mode_and_the_body_bills_the_grand_total(connection, fusion, mode):
    Connection.objects.filter(pk=connection.pk).update(freight_mode=mode)
    document = order_document(lines=(("LAP-15", "1", "100.00"), ("MOUSE", "3", "10.00")), shipping="9.99")
    record = _run(connection, document)
    assert record.state == Record.State.POSTED, record.last_error
    (body,) = fusion.posts
    freight_dists = [d for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Freight"]
    if mode == "allocated":
        assert [ln.get("AllocatedFreightAmount") for ln in body["receivablesInvoiceLines"]] == [7.68, 2.31]
        assert [(d["InvoiceLineNumber"], d["Amount"]) for d in freight_dists] == [(1, 7.68), (2, 2.31)]
        assert "FreightAmount" not in body
    else:
        assert body["FreightAmount"] == 9.99
        assert freight_dists == [
            {"AccountClass": "Freight", "AccountCombination": "01-000-4520-0000-000", "Amount": 9.99}
        ]
    assert payload_total(body) == document.grand_total == Decimal("139.99")


def test_a_credit_memo_with_tax_and_freight_credits_both(connection, fusion):
    _run(connection, order_document())
    memo = order_document(
        "77", kind="creditmemo", order_entity_id="12345", lines=(("LAP-15", "1", "1299.99"),), shipping="10.00"
    )
    memo = dataclasses.replace(
        taxed(memo, "107.25"), shipping_tax=Decimal("0.83"), grand_total=memo.grand_total + Decimal("108.08")
    )
    record = _run(connection, memo)
    assert record.state == Record.State.POSTED, record.last_error
    body = fusion.posts[-1]
    (line,) = body["receivablesCreditMemoLines"]
    assert [t["TaxAmount"] for t in line["receivablesCreditMemoLineTaxLines"]] == [-107.25, -0.83]
    assert body["FreightCreditAmount"] == -10
    assert payload_total(body) == memo.grand_total


# --- foreign currency ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate_type", "rate"), [("Corporate", None), ("Spot", None), ("User", 1.25)])
def test_a_eur_order_into_a_usd_ledger_names_its_rate_type_date_and_user_rate(connection, fusion, rate_type, rate):
    Connection.objects.filter(pk=connection.pk).update(
        conversion_rate_type=rate_type, journal_mode=Connection.JournalMode.SALES_JOURNAL
    )
    document = dataclasses.replace(
        order_document(currency="EUR"), base_currency="USD", base_to_order_rate=Decimal("0.8")
    )
    record = _run(connection, document)
    assert record.state == Record.State.JOURNAL_PENDING, record.last_error
    (body,) = fusion.posts
    assert (body["InvoiceCurrencyCode"], body["ConversionRateType"], body["ConversionDate"]) == (
        "EUR",
        rate_type,
        "2026-11-20",
    )
    assert body.get("ConversionRate") == rate
    entry = JournalEntry.objects.get(record=record)
    assert entry.currency == "EUR"
    assert entry.conversion == {"rate_type": rate_type, "date": "2026-11-20", "rate": "1.2500000000" if rate else None}
