"""The posting pipeline against Fusion's HTTP contract, mocked with `responses`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import requests
import responses
from django.core.cache import cache
from django.utils import timezone

from audit.models import AuditEvent
from connector.documents import Customer
from connector.models import Connection, Record
from connector.records import record_accept
from fusion.models import JournalBatch
from mappings.models import ProductRule
from sync.flows.sales_documents import record_process
from sync.replay import record_replay
from tests.factories import make_connection
from tests.fake_fusion import FakeFusion
from tests.posting import order_document, seed_mappings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "commerce"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0  # tests below re-run at once; one test checks the floor
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


def _accept(connection, document=None):
    return record_accept(connection=connection, document=document or order_document()).record


def _run(record) -> Record:
    record_process(record_id=record.pk)
    record.refresh_from_db()
    return record


def test_happy_path_posts_one_ar_invoice_with_distributions(connection, fusion):
    record = _run(_accept(connection))
    assert record.state == Record.State.POSTED
    assert record.fusion_transaction_number == "MAG-000012345"
    assert record.fusion_transaction_id == "300100000"
    (body,) = fusion.posts
    assert body["BusinessUnit"] == "Vision Operations" and body["TransactionSource"] == "COMMERCE_WEB"
    assert body["BillToCustomerNumber"] == "1008" and body["BillToSite"] == "1042"
    assert body["TransactionDate"] == "2026-11-20" and body["InvoiceCurrencyCode"] == "USD"
    amounts = sum(
        line["Quantity"] * line["UnitSellingPrice"] + line.get("AllocatedFreightAmount", 0)
        for line in body["receivablesInvoiceLines"]
    )
    assert round(amounts, 2) == 2609.98
    classes = {d["AccountClass"]: d["AccountCombination"] for d in body["receivablesInvoiceDistributions"]}
    assert classes == {
        "Revenue": "01-000-4110-0000-000",
        "Receivable": "01-000-1210-0000-000",
        "Freight": "01-000-4520-0000-000",
    }
    actions = list(AuditEvent.objects.filter(target_id=str(record.pk)).values_list("action", flat=True))
    assert "record.document_posted" in actions and "record.posted" in actions


def test_duplicate_deliveries_make_one_post(connection, fusion):
    for _ in range(5):
        record = _accept(connection)
    for _ in range(3):
        record_process(record_id=record.pk)
    assert Record.objects.count() == 1
    assert len(fusion.posts) == 1


def test_timeout_after_fusion_created_the_invoice_makes_no_second_post(connection, fusion):
    def commit_then_time_out(body):
        fusion.store(body)
        raise requests.exceptions.ReadTimeout("read timed out")

    fusion.post_failures.append(commit_then_time_out)
    record = _run(_accept(connection))
    assert record.state == Record.State.RETRYING and record.outcome_unknown
    record = _run(record)
    assert record.state == Record.State.POSTED
    assert len(fusion.posts) == 1
    assert AuditEvent.objects.filter(action="record.document_adopted").count() == 1


def test_503_three_times_then_success(connection, fusion):
    fusion.post_failures.extend([(503, {"title": "Service Unavailable"})] * 3)
    record = _accept(connection)
    for _ in range(3):
        record = _run(record)
        assert record.state == Record.State.RETRYING
    record = _run(record)
    assert record.state == Record.State.POSTED
    assert record.attempts == 3
    assert len(fusion.invoices) == 1


def test_fusion_400_parks_the_record_with_fusions_message(connection, fusion):
    fusion.post_failures.append(
        (
            400,
            {
                "title": "Bad Request",
                "o:errorDetails": [
                    {
                        "detail": "The payment terms Immediate are not valid for this business unit.",
                        "o:errorCode": "AR-1",
                    }
                ],
            },
        )
    )
    record = _run(_accept(connection))
    assert record.state == Record.State.NEEDS_REVIEW
    assert "payment terms Immediate are not valid" in record.last_error
    assert record.resolution_hint.startswith("Resolution:")


def test_disabled_combination_parks_before_any_post(connection, fusion):
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4999"})
    record = _run(_accept(connection))
    assert record.state == Record.State.NEEDS_REVIEW
    assert "01-000-4999-0000-000 is disabled" in record.last_error
    assert fusion.posts == []


def test_replay_after_fixing_the_mapping_posts_it(connection, fusion):
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4999"})
    record = _run(_accept(connection))
    assert record.state == Record.State.NEEDS_REVIEW
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4110"})
    record_replay(record=record, actor="finance@example.com", reason="mapped to 4110")
    record = _run(record)
    assert record.state == Record.State.POSTED
    assert len(fusion.posts) == 1
    assert AuditEvent.objects.filter(action="record.replayed", actor="finance@example.com").exists()


def test_credit_memo_goes_to_receivables_credit_memos_naming_the_invoice(connection, fusion):
    order = _run(_accept(connection))
    memo = order_document(
        "77", kind="creditmemo", order_entity_id="12345", lines=(("LAP-15", "1", "1299.99"),), shipping="0"
    )
    record = _run(_accept(connection, memo))
    assert record.state == Record.State.POSTED, record.last_error
    memo_body = fusion.posts[-1]
    assert "receivablesCreditMemoLines" in memo_body
    assert memo_body["receivablesCreditMemoLines"][0]["UnitSellingPrice"] < 0
    assert order.fusion_transaction_number in memo_body["CreditMemoComments"]


def test_commerce_invoice_is_linked_to_the_posted_order_under_the_order_policy(connection, fusion):
    order = _run(_accept(connection))
    invoice = _run(_accept(connection, order_document("900", kind="invoice", order_entity_id="12345")))
    assert invoice.state == Record.State.LINKED and invoice.linked_record_id == order.pk
    assert len(fusion.posts) == 1


def test_sales_journal_mode_puts_balanced_lines_in_the_open_batch(connection, fusion):
    Connection.objects.filter(pk=connection.pk).update(journal_mode=Connection.JournalMode.SALES_JOURNAL)
    record = _run(_accept(connection))
    assert record.state == Record.State.JOURNAL_PENDING
    batch = JournalBatch.objects.get()
    lines = batch.entries.get().lines
    debit = sum(float(line["entered_dr"] or 0) for line in lines)
    credit = sum(float(line["entered_cr"] or 0) for line in lines)
    assert round(debit, 2) == round(credit, 2) == 2609.98


def test_after_an_unknown_outcome_the_next_look_up_waits_for_the_floor(connection, fusion, settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 120
    fusion.post_failures.append((504, {"title": "Gateway Timeout"}))  # a gateway gave up; Fusion may still finish
    record = _run(_accept(connection))
    assert record.state == Record.State.RETRYING and record.outcome_unknown
    assert (record.next_attempt_at - timezone.now()).total_seconds() > 110


def test_a_replay_after_the_mappings_changed_still_finds_the_first_create(connection, fusion):
    def commit_then_time_out(body):
        fusion.store(body)
        raise requests.exceptions.ReadTimeout("read timed out")

    fusion.post_failures.append(commit_then_time_out)
    record = _run(_accept(connection))
    assert record.outcome_unknown
    # Finance changes the numbering before the retry: the look-up must still try the number first sent.
    Connection.objects.filter(pk=connection.pk).update(transaction_number_prefix="WEB-")
    record = _run(record)
    assert record.state == Record.State.POSTED and record.fusion_transaction_number == "MAG-000012345"
    assert len(fusion.posts) == 1


def test_a_number_already_used_for_another_document_is_not_adopted(connection, fusion):
    fusion.invoices["MAG-000012345"] = {"id": 42, "body": {}, "xref": "commerce-order-999"}
    record = _run(_accept(connection))
    assert record.state == Record.State.NEEDS_REVIEW
    assert "another connection or system uses the same numbers" in record.last_error
    assert fusion.posts == []


def test_an_invoice_bills_its_orders_customer(connection, fusion):
    from mappings.models import CustomerRule

    CustomerRule.objects.create(
        connection=connection,
        match_type="email",
        match_value="buyer@example.com",
        bill_to_customer_number="1008",
        bill_to_site="1042",
    )
    CustomerRule.objects.filter(connection=connection, match_type="default").update(bill_to_customer_number="4040")
    Connection.objects.filter(pk=connection.pk).update(invoice_event=Connection.InvoiceEvent.INVOICE)
    _accept(connection)  # the order, with the buyer's email; not posted under the invoice policy
    invoice = dataclasses.replace(order_document("900", kind="invoice", order_entity_id="12345"), customer=Customer())
    record = _run(_accept(connection, invoice))
    assert record.state == Record.State.POSTED, record.last_error
    assert fusion.posts[-1]["BillToCustomerNumber"] == "1008"


def test_switching_to_the_invoice_policy_does_not_bill_a_posted_order_again(connection, fusion):
    _run(_accept(connection))
    Connection.objects.filter(pk=connection.pk).update(invoice_event=Connection.InvoiceEvent.INVOICE)
    invoice = _run(_accept(connection, order_document("900", kind="invoice", order_entity_id="12345")))
    assert invoice.state == Record.State.LINKED
    assert len(fusion.posts) == 1


def test_an_invoice_waiting_for_its_order_does_not_use_up_its_attempts(connection, fusion):
    invoice = _run(_accept(connection, order_document("900", kind="invoice", order_entity_id="555")))
    assert invoice.state == Record.State.RETRYING and invoice.attempts == 0
    assert "Waiting for order 555" in invoice.last_error


COMMERCE_ORDERS = "https://shop.example.com/rest/default/V1/orders"


def _placeholder(connection):
    document = dataclasses.replace(order_document("12345"), entity_id="#000012345")
    return record_accept(connection=connection, document=document).record


def test_an_order_from_a_before_hook_waits_until_commerce_has_it(connection, fusion):
    fusion.rsps.add(responses.GET, COMMERCE_ORDERS, json={"items": [], "total_count": 0})
    record = _run(_placeholder(connection))
    assert record.state == Record.State.RETRYING and record.attempts == 0
    assert "before-placement hook" in record.last_error
    assert fusion.posts == []


def test_an_order_from_a_before_hook_is_posted_once_commerce_confirms_it(connection, fusion):
    saved = json.loads((FIXTURES / "order_place_after.json").read_text())["data"]["order"]
    saved.update(entity_id="12345", increment_id="000012345")
    fusion.rsps.add(responses.GET, COMMERCE_ORDERS, json={"items": [saved], "total_count": 1})
    record = _run(_placeholder(connection))
    assert record.commerce_entity_id == "12345"
    assert record.state == Record.State.POSTED, record.last_error
    assert AuditEvent.objects.filter(action="record.confirmed", target_id=str(record.pk)).exists()


def test_the_attempt_is_in_the_audit_trail_before_the_create_is_sent(connection, fusion):
    # A worker killed mid-POST (here: the process exits while the create is on the wire) leaves a trace.
    trail_when_sent = []

    def killed_mid_post(body):
        trail_when_sent.append(list(AuditEvent.objects.values_list("action", flat=True)))
        raise SystemExit("worker killed")

    fusion.post_failures.append(killed_mid_post)
    record = _accept(connection)
    with pytest.raises(SystemExit):
        record_process(record_id=record.pk)
    (trail,) = trail_when_sent
    assert "record.post_attempt" in trail
    attempt = AuditEvent.objects.get(action="record.post_attempt", target_id=str(record.pk))
    assert attempt.data["identity"]["number"] == "MAG-000012345" and attempt.data["total"]
    record.refresh_from_db()
    assert record.posting_identities == [attempt.data["identity"]]


def test_every_create_is_preceded_by_its_attempt(connection, fusion):
    fusion.post_failures.append((503, {"title": "Service Unavailable"}))
    record = _run(_run(_accept(connection)))
    assert record.state == Record.State.POSTED
    actions = list(AuditEvent.objects.filter(target_id=str(record.pk)).order_by("id").values_list("action", flat=True))
    assert actions.count("record.post_attempt") == 2
    assert actions.index("record.post_attempt") < actions.index("record.document_posted")


def test_an_unreadable_record_replayed_is_parked_again_without_calling_fusion(connection, fusion):
    from connector.records import record_unreadable

    parked = record_unreadable(
        connection=connection,
        kind="order",
        key="abc",
        reason="grand_total is out of range",
        source="webhook",
        actor="system:test",
    ).record
    record_replay(record=parked, actor="system:test", reason="try again")
    record = _run(parked)
    assert record.state == Record.State.NEEDS_REVIEW and "grand_total is out of range" in record.last_error
    assert fusion.posts == []


# What posting one order costs in SQL once the reference cache is warm: the claim, the rules, the reference
# check, the audit events and the state changes. A re-read of the record or of its connection, or a query per
# line or per step, shows here.
POSTING_QUERIES = 30


def test_posting_an_order_takes_a_small_constant_number_of_queries(connection, fusion, django_assert_max_num_queries):
    _run(_accept(connection))  # warms the reference cache
    second = _accept(connection, dataclasses.replace(order_document(), entity_id="778", increment_id="000012346"))
    with django_assert_max_num_queries(POSTING_QUERIES):
        assert _run(second).state == Record.State.POSTED
