"""Backfill: Commerce documents that no webhook brought become records; known ones are left alone."""

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from commerce import tasks
from commerce.payloads import order_document
from commerce.services import backfill_run
from connector.exceptions import TransientError
from connector.models import Connection, Record
from connector.schedules import DEFAULT_SCHEDULES
from connector.services import record_accept
from tests.factories import make_connection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def rest_order(entity_id: int, **changes) -> dict:
    """An order as REST GET /V1/orders returns it: typed JSON, same fields as the webhook's raw data."""
    order = json.loads((FIXTURES / "order_place_after.json").read_text())["data"]["order"]
    order.update({"entity_id": entity_id, "increment_id": f"{entity_id:09d}", "grand_total": 85.99, **changes})
    return order


def rest_invoice(entity_id: int, order_id: int) -> dict:
    invoice = json.loads((FIXTURES / "invoice_save_after.json").read_text())["data"]["invoice"]
    invoice.update(entity_id=entity_id, increment_id=f"{entity_id:09d}", order_id=order_id)
    return invoice


class FakeCommerce:
    """The CommerceClient interface the backfill uses (iter_orders / iter_invoices / iter_creditmemos)."""

    def __init__(self, orders=(), invoices=(), creditmemos=(), fail_on=None):
        self.data = {"orders": list(orders), "invoices": list(invoices), "creditmemos": list(creditmemos)}
        self.calls = []
        self.fail_on = fail_on

    def _iter(self, name, updated_since):
        self.calls.append((name, updated_since))
        if name == self.fail_on:
            raise TransientError("Commerce answered 503", status=503)
        yield from self.data[name]

    def iter_orders(self, updated_since):
        return self._iter("orders", updated_since)

    def iter_invoices(self, updated_since):
        return self._iter("invoices", updated_since)

    def iter_creditmemos(self, updated_since):
        return self._iter("creditmemos", updated_since)


@pytest.fixture
def shop(db):
    return make_connection()


def test_backfill_creates_exactly_the_missing_records(shop, django_capture_on_commit_callbacks):
    for known in (1, 2):
        record_accept(connection=shop, document=order_document(rest_order(known)))
    client = FakeCommerce(orders=[rest_order(n) for n in (1, 2, 3, 4)], invoices=[rest_invoice(10, 3)])
    with mock.patch("commerce.services.waker") as waker, django_capture_on_commit_callbacks(execute=True):
        result = backfill_run(connection=shop, client=client, now=NOW)
    assert (result.created, result.known, result.unreadable) == (3, 2, 0)
    assert result.seen == {"order": 4, "invoice": 1}
    assert sorted(Record.objects.values_list("kind", "commerce_entity_id", "source")) == [
        ("invoice", "10", "backfill"),
        ("order", "1", "webhook"),
        ("order", "2", "webhook"),
        ("order", "3", "backfill"),
        ("order", "4", "backfill"),
    ]
    assert waker.wake.call_count == 3
    received = AuditEvent.objects.filter(action="record.received", data__source="backfill")
    assert received.count() == 3 and set(received.values_list("actor", flat=True)) == {"system:backfill"}
    summary = AuditEvent.objects.get(action="commerce.backfill")
    assert summary.outcome == "success" and summary.data["created"] == 3
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW


def test_second_run_creates_nothing(shop):
    client = FakeCommerce(orders=[rest_order(5)])
    backfill_run(connection=shop, client=client, now=NOW)
    again = backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=5))
    assert (again.created, again.known) == (0, 1)
    assert Record.objects.count() == 1


def test_watermark_is_read_back_with_an_overlap(shop):
    Connection.objects.filter(pk=shop.pk).update(commerce_backfill_watermark=NOW)
    shop.refresh_from_db()
    client = FakeCommerce()
    backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=5))
    assert {since for _, since in client.calls} == {NOW - timedelta(minutes=5)}
    assert [name for name, _ in client.calls] == ["orders", "invoices", "creditmemos"]


def test_first_run_looks_back_a_day(shop):
    client = FakeCommerce()
    backfill_run(connection=shop, client=client, now=NOW)
    assert client.calls[0][1] == NOW - timedelta(hours=24)


def test_an_unreadable_document_is_audited_and_the_rest_still_created(shop):
    client = FakeCommerce(orders=[rest_order(6, grand_total="n/a"), rest_order(7)])
    result = backfill_run(connection=shop, client=client, now=NOW)
    assert (result.created, result.unreadable) == (1, 1)
    event = AuditEvent.objects.get(action="commerce.backfill_unreadable")
    assert event.outcome == "failure" and event.target_id == "6" and "grand_total" in event.message


def test_a_failed_pull_keeps_the_watermark_and_is_audited(shop):
    client = FakeCommerce(orders=[rest_order(8)], fail_on="invoices")
    with pytest.raises(TransientError):
        backfill_run(connection=shop, client=client, now=NOW)
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark is None
    assert AuditEvent.objects.get(action="commerce.backfill").outcome == "failure"
    assert Record.objects.count() == 1  # what was read is kept; the next run skips it as known


def test_an_order_known_only_by_number_is_not_created_twice(shop, client):
    before = json.loads((FIXTURES / "order_plugin_place_before.json").read_text())["order"]
    from commerce.services import _keyed

    record_accept(connection=shop, document=_keyed(shop, order_document(before)))
    result = backfill_run(connection=shop, client=FakeCommerce(orders=[{**before, "entity_id": 43}]), now=NOW)
    assert (result.created, result.known) == (0, 1)
    assert Record.objects.get().commerce_entity_id == "43"


def test_manual_catch_up_command(shop):
    client = FakeCommerce(orders=[rest_order(9)])
    out = StringIO()
    with mock.patch("commerce.services.commerce_client", return_value=client):
        call_command("backfill", shop.slug, "--since", "2026-11-01", stdout=out)
    assert client.calls[0][1] == datetime(2026, 11, 1, tzinfo=UTC)
    assert "created 1" in out.getvalue()
    assert AuditEvent.objects.get(action="commerce.backfill").actor == "command:backfill"


def test_command_refuses_an_unknown_slug_and_a_bad_date(shop):
    with pytest.raises(CommandError, match="No connection"):
        call_command("backfill", "nope")
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("backfill", shop.slug, "--since", "last tuesday")


def test_beat_task_fans_out_one_backfill_per_enabled_connection(shop):
    make_connection(enabled=False)
    with mock.patch.object(tasks.backfill_connection, "apply_async") as send:
        assert tasks.backfill_all() == 1
    send.assert_called_once_with(args=[shop.pk], retry=False)


def test_backfill_task_runs_the_service_and_skips_a_disabled_connection(shop):
    client = FakeCommerce(orders=[rest_order(11)])
    with mock.patch("commerce.services.commerce_client", return_value=client):
        assert tasks.backfill_connection(shop.pk).startswith("1 new")
    Connection.objects.filter(pk=shop.pk).update(enabled=False)
    assert tasks.backfill_connection(shop.pk) == "connection missing or disabled"


def test_backfill_and_purge_are_on_the_beat_schedule():
    by_task = {s.task: s for s in DEFAULT_SCHEDULES}
    assert by_task["commerce.backfill_all"].every_seconds == 300
    assert by_task["commerce.purge_bodies"].every_seconds == 86400


def test_backfill_through_the_rest_client(shop, settings):
    """The real client against the REST search URLs (mocked with responses)."""
    pytest.importorskip("commerce.client")
    import responses

    orders = [rest_order(n) for n in (21, 22)]
    record_accept(connection=shop, document=order_document(orders[0]))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.GET,
            re.compile(r"https://shop\.example\.com/rest/default/V1/orders\?.*"),
            json={"items": orders, "total_count": 2, "search_criteria": {}},
        )
        for resource in ("invoices", "creditmemos"):
            rsps.add(
                responses.GET,
                re.compile(rf"https://shop\.example\.com/rest/default/V1/{resource}\?.*"),
                json={"items": [], "total_count": 0, "search_criteria": {}},
            )
        result = backfill_run(connection=shop, now=NOW)
        first_url = rsps.calls[0].request.url
    assert (result.created, result.known) == (1, 1)
    assert "updated_at" in first_url and "gteq" in first_url
