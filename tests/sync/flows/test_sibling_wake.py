"""Siblings that wake each other: a Commerce invoice (or credit memo) that arrives before its order waits for it;
when the order gets its AR invoice, the waiting records are made due and woken once that commits, not on their
five-minute timer, also when the order was parked and replayed."""

from __future__ import annotations

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone

from connector.models import Record
from connector.records import record_accept
from mappings.models import ProductRule
from sync.flows import sales_documents
from sync.flows.sales_documents import record_process
from sync.replay import record_replay
from tests.factories import make_connection
from tests.fake_fusion import FakeFusion
from tests.posting import order_document, seed_mappings


@pytest.fixture(autouse=True)
def _fresh_cache():
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


@pytest.fixture
def woken(monkeypatch):
    """The record ids the flow wakes (the broker message itself is the wake-ups module's business)."""
    sent: list[list[int]] = []
    monkeypatch.setattr(sales_documents, "records_wake", lambda *, record_ids: sent.append(list(record_ids)))
    return sent


def _accept(connection, document):
    return record_accept(connection=connection, document=document).record


def _run(record):
    record_process(record_id=record.pk)
    record.refresh_from_db()
    return record


def _early_invoice(connection):
    invoice = _run(_accept(connection, order_document("900", kind="invoice", order_entity_id="12345")))
    assert invoice.state == Record.State.RETRYING and "Waiting for order" in invoice.last_error
    assert (invoice.next_attempt_at - timezone.now()).total_seconds() > 250  # the five-minute timer
    return invoice


def test_posting_the_order_wakes_its_waiting_invoice_and_credit_memo_at_once(
    connection, fusion, woken, django_capture_on_commit_callbacks
):
    invoice = _early_invoice(connection)
    memo = _accept(connection, order_document("77", kind="creditmemo", order_entity_id="12345", shipping="0"))
    Record.objects.filter(pk=memo.pk).update(
        state=Record.State.RETRYING, next_attempt_at=timezone.now() + timezone.timedelta(minutes=3)
    )
    other = _accept(connection, order_document("901", kind="invoice", order_entity_id="555"))
    with django_capture_on_commit_callbacks(execute=True):
        order = _run(_accept(connection, order_document("12345")))
    assert order.state == Record.State.POSTED
    assert woken == [[invoice.pk, memo.pk]]  # after the commit, not before; the other order's invoice sleeps on
    invoice.refresh_from_db()
    assert invoice.next_attempt_at <= timezone.now()
    other.refresh_from_db()
    assert other.state == Record.State.RECEIVED
    invoice = _run(invoice)  # what the woken worker does
    assert invoice.state == Record.State.LINKED and invoice.linked_record_id == order.pk


def test_nothing_is_woken_before_the_orders_posting_commits(
    connection, fusion, woken, django_capture_on_commit_callbacks
):
    _early_invoice(connection)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _run(_accept(connection, order_document("12345")))
    assert woken == [] and callbacks  # queued for the commit


def test_an_order_parked_then_replayed_wakes_its_invoice_when_it_posts(
    connection, fusion, woken, django_capture_on_commit_callbacks
):
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4999"})  # disabled account
    order = _run(_accept(connection, order_document("12345")))
    assert order.state == Record.State.NEEDS_REVIEW
    invoice = _early_invoice(connection)
    assert woken == []
    ProductRule.objects.filter(connection=connection).update(segments={"Account": "4110"})
    record_replay(record=order, actor="finance@example.com", reason="account fixed")
    with django_capture_on_commit_callbacks(execute=True):
        order = _run(order)
    assert order.state == Record.State.POSTED
    assert woken == [[invoice.pk]]
    assert _run(invoice).state == Record.State.LINKED


def test_an_invoice_whose_order_posts_while_it_decides_to_wait_looks_again_at_once(connection, fusion, monkeypatch):
    """The order's wake-up finds the invoice leased by the worker deciding to wait: that worker must see the posted
    order itself, or the invoice sleeps its five minutes."""
    order = _run(_accept(connection, order_document("12345")))
    real = sales_documents.posted_sibling
    calls = {"n": 0}

    def first_not_yet(record, kind):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(record, kind)

    monkeypatch.setattr(sales_documents, "posted_sibling", first_not_yet)
    invoice = _run(_accept(connection, order_document("900", kind="invoice", order_entity_id="12345")))
    assert invoice.state == Record.State.LINKED and invoice.linked_record_id == order.pk
