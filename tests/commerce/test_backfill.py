"""Backfill: Commerce documents that no webhook brought become records; known ones are left alone."""

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from commerce.backfill import backfill_run
from commerce.deliveries import document_keyed
from commerce.payloads import order_document
from connector.models import Connection, Record
from connector.records import record_accept
from core.errors import PermanentError, TransientError
from sync import tasks
from sync.schedules import DEFAULT_SCHEDULES
from tests.commerce.test_client import REST, search_server
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

    def iter_orders(self, updated_since, page_size=None):
        return self._iter("orders", updated_since)

    def iter_invoices(self, updated_since, page_size=None):
        return self._iter("invoices", updated_since)

    def iter_creditmemos(self, updated_since, page_size=None):
        return self._iter("creditmemos", updated_since)


@pytest.fixture
def shop(db):
    return make_connection()


def test_backfill_creates_exactly_the_missing_records(shop, django_capture_on_commit_callbacks):
    for known in (1, 2):
        record_accept(connection=shop, document=order_document(rest_order(known)))
    client = FakeCommerce(orders=[rest_order(n) for n in (1, 2, 3, 4)], invoices=[rest_invoice(10, 3)])
    with mock.patch("commerce.backfill.waker") as waker, django_capture_on_commit_callbacks(execute=True):
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


def test_a_run_that_reads_nothing_new_leaves_the_watermark_and_writes_no_audit_event(shop):
    client = FakeCommerce(orders=[rest_order(5, updated_at="2026-11-26 11:58:00")])
    backfill_run(connection=shop, client=client, now=NOW)
    events = AuditEvent.objects.filter(action="commerce.backfill")
    assert events.count() == 1
    # Five minutes on, the overlap reads the same order again: known, stamped before the watermark.
    again = backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=5))
    assert again.known == 1 and again.watermark is None
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW
    assert events.count() == 1
    client.data["orders"] = []  # an empty read: the same
    backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=10))
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW and events.count() == 1

    client.data["orders"] = [rest_order(6, updated_at="2026-11-26 12:12:00")]
    later = backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=15))
    assert later.created == 1
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW + timedelta(minutes=15)
    assert events.count() == 2


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


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"grand_total": "1e30"}, "grand_total is out of range"),
        ({"grand_total": 1e20}, "grand_total is out of range"),
        ({"entity_id": "9" * 100}, "entity_id is longer than 64 characters"),
    ],
)
def test_a_page_holding_a_document_a_record_cannot_hold_creates_the_others_and_moves_the_watermark(
    shop, change, reason
):
    odd = rest_order(6)
    odd.update(change)
    client = FakeCommerce(orders=[rest_order(5), odd, rest_order(7)], invoices=[rest_invoice(10, 5)])
    result = backfill_run(connection=shop, client=client, now=NOW)
    assert (result.created, result.unreadable) == (3, 1)
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW  # the run went on past it
    assert sorted(Record.objects.filter(state="received").values_list("commerce_entity_id", flat=True)) == [
        "10",
        "5",
        "7",
    ]
    parked = Record.objects.get(state=Record.State.NEEDS_REVIEW)  # visible among the records needing review
    assert parked.commerce_entity_id.startswith("!") and parked.source == "backfill" and reason in parked.last_error
    event = AuditEvent.objects.get(action="commerce.backfill_unreadable")
    assert event.outcome == "failure" and reason in event.message
    again = backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=5))
    assert (again.created, again.unreadable) == (0, 1)
    assert Record.objects.count() == 4  # the same unreadable document is the same parked record
    assert AuditEvent.objects.filter(action="commerce.backfill_unreadable").count() == 1


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

    record_accept(connection=shop, document=document_keyed(shop, order_document(before)))
    result = backfill_run(connection=shop, client=FakeCommerce(orders=[{**before, "entity_id": 43}]), now=NOW)
    assert (result.created, result.known) == (0, 1)
    assert Record.objects.get().commerce_entity_id == "43"


def test_manual_catch_up_command(shop):
    client = FakeCommerce(orders=[rest_order(9)])
    out = StringIO()
    with mock.patch("commerce.backfill.CommerceClient.for_connection", return_value=client):
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
    with mock.patch("commerce.backfill.CommerceClient.for_connection", return_value=client):
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


# --- keyset paging, a watermark saved page by page, bounded runs ----------------------------------------------

OVERLAP = timedelta(minutes=5)  # CONNECTOR_BACKFILL_OVERLAP_SECONDS default


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def serve(rsps, orders, *, callback=None, **options):
    """Commerce's order search over `orders()` (a changing list), or `callback`; no invoices or credit memos."""
    calls = []
    if callback is None:
        callback, calls = search_server(orders, **options)
    rsps.add_callback(responses.GET, f"{REST}/orders", callback=callback)
    for resource in ("invoices", "creditmemos"):
        empty, _ = search_server(lambda: [])
        rsps.add_callback(responses.GET, f"{REST}/{resource}", callback=empty)
    return calls


def since_asked(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    return query["searchCriteria[filter_groups][0][filters][0][value]"][0]


def test_orders_changing_between_pages_are_not_skipped(shop):
    orders = [rest_order(n, updated_at=stamp(NOW - timedelta(hours=6 - n))) for n in range(1, 6)]

    def order_1_is_edited(call):
        if call == 2:  # a comment added to order 1 while the backfill reads: it moves to the end of the sort
            orders[0] = {**orders[0], "updated_at": stamp(NOW - timedelta(minutes=30))}

    with responses.RequestsMock() as rsps:
        serve(rsps, lambda: orders, on_call=order_1_is_edited)
        result = backfill_run(connection=shop, now=NOW, page_size=2)
    assert sorted(Record.objects.values_list("commerce_entity_id", flat=True)) == ["1", "2", "3", "4", "5"]
    assert (result.created, result.known, result.complete) == (5, 1, True)


def test_a_run_stopped_midway_resumes_from_the_saved_watermark(shop):
    # A long catch-up: five orders spread over the first day's window, two per page, two pages per run.
    times = {n: NOW - timedelta(hours=20 - n) for n in range(1, 6)}
    orders = [rest_order(n, updated_at=stamp(times[n])) for n in range(1, 6)]
    with responses.RequestsMock() as rsps:
        serve(rsps, lambda: orders)
        first = backfill_run(connection=shop, now=NOW, page_size=2, max_pages=2)
    assert (first.complete, first.pages, first.created) == (False, 2, 4)
    assert first.resume_from == times[4]
    shop.refresh_from_db()
    # Everything before order 4's updated_at is read; the next run reads from there (watermark minus overlap).
    assert shop.commerce_backfill_watermark == first.watermark == times[4] + OVERLAP
    event = AuditEvent.objects.get(action="commerce.backfill")  # one event for the run, not one per page
    assert event.outcome == "success" and "stopped after 2 pages" in event.message
    assert event.data["complete"] is False

    with responses.RequestsMock() as rsps:
        calls = serve(rsps, lambda: orders)
        second = backfill_run(connection=shop, now=NOW + timedelta(minutes=5), page_size=2, max_pages=2)
    assert since_asked(calls[0]) == stamp(times[4])
    assert (second.complete, second.created, second.known) == (True, 1, 1)
    assert sorted(Record.objects.values_list("commerce_entity_id", flat=True)) == ["1", "2", "3", "4", "5"]
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW + timedelta(minutes=5)
    assert AuditEvent.objects.filter(action="commerce.backfill").count() == 2


def test_a_failed_run_keeps_the_watermark_of_the_pages_it_finished(shop):
    times = {n: NOW - timedelta(hours=10 - n) for n in range(1, 4)}
    orders = [rest_order(n, updated_at=stamp(times[n])) for n in range(1, 4)]
    answer, calls = search_server(lambda: orders)

    def second_page_fails(request):
        if calls:
            return 400, {"Content-Type": "application/json"}, json.dumps({"message": "Something went wrong."})
        return answer(request)

    with responses.RequestsMock() as rsps:
        serve(rsps, None, callback=second_page_fails)
        with pytest.raises(PermanentError):
            backfill_run(connection=shop, now=NOW, page_size=2)
    assert Record.objects.count() == 2
    shop.refresh_from_db()
    # Orders 1 and 2 are read, invoices and credit memos too: the next run starts at order 2's updated_at.
    assert shop.commerce_backfill_watermark == times[2] + OVERLAP
    event = AuditEvent.objects.get(action="commerce.backfill")
    assert event.outcome == "failure"
    assert f"watermark now {stamp(times[2] + OVERLAP)}" in event.message


def test_a_run_with_no_time_left_reads_nothing_and_moves_nothing(shop):
    Connection.objects.filter(pk=shop.pk).update(commerce_backfill_watermark=NOW)
    shop.refresh_from_db()
    client = FakeCommerce(orders=[rest_order(1)])
    result = backfill_run(connection=shop, client=client, now=NOW + timedelta(minutes=5), max_seconds=0)
    assert (result.complete, result.pages, client.calls) == (False, 0, [])
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW


def test_the_watermark_never_moves_back(shop):
    Connection.objects.filter(pk=shop.pk).update(commerce_backfill_watermark=NOW)
    shop.refresh_from_db()
    backfill_run(connection=shop, client=FakeCommerce(), since=NOW - timedelta(days=3), now=NOW - timedelta(hours=1))
    shop.refresh_from_db()
    assert shop.commerce_backfill_watermark == NOW


def test_manual_catch_up_says_where_to_carry_on_when_it_stops_at_the_limit(shop, settings):
    settings.CONNECTOR_BACKFILL_MAX_PAGES = 3
    memo = json.loads((FIXTURES / "creditmemo_save_after.json").read_text())["data"]["creditmemo"]
    client = FakeCommerce(
        orders=[rest_order(n, updated_at=f"2026-11-0{n} 10:00:00") for n in (2, 3)],
        invoices=[{**rest_invoice(10, 3), "updated_at": "2026-11-04 10:00:00"}],
        creditmemos=[{**memo, "updated_at": "2026-11-05 10:00:00"}],
    )
    out = StringIO()
    with mock.patch("commerce.backfill.CommerceClient.for_connection", return_value=client):
        call_command("backfill", shop.slug, "--since", "2026-11-01", stdout=out)
    assert "created 4" in out.getvalue()
    # A page of each kind was read: all three are read up to the orders' last updated_at at least.
    assert "Carry on with --since 2026-11-03T10:00:00Z" in out.getvalue()
