"""The relay wakes what is due, once per window, so a lost wake-up costs a delay and never a document."""

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from connector.models import Record
from connector.records import record_accept, record_accept_many
from sync import relay, tasks
from tests.factories import make_connection
from tests.posting import order_document


@pytest.mark.django_db
def test_relay_wakes_a_due_record_once_per_window(monkeypatch):
    cache.clear()
    woken = []
    monkeypatch.setattr(relay, "records_wake", lambda *, record_ids: woken.extend(record_ids))
    conn = make_connection()
    record = record_accept(connection=conn, document=order_document()).record
    assert relay.relay_due(limit=10) == 1
    assert relay.relay_due(limit=10) == 0
    relay.relay_picked_up(record_id=record.pk)  # a worker took it; it fell due again
    assert relay.relay_due(limit=10) == 1
    assert woken == [record.pk, record.pk]


@pytest.mark.django_db
def test_relay_drives_a_delivery_no_worker_read_once_per_window(monkeypatch, settings):
    from commerce.deliveries import delivery_store
    from connector.wakeups import wakeups_flush

    cache.clear()
    settings.CONNECTOR_DELIVERY_GRACE_SECONDS = 0
    driven = []
    monkeypatch.setattr(relay, "deliveries_wake", lambda *, delivery_ids: driven.append(list(delivery_ids)))
    conn = make_connection()
    monkeypatch.setattr("connector.wakeups.deliveries_wake", lambda **kw: None)
    delivery_id = delivery_store(connection_id=conn.pk, body=b"{}", verifier="hmac:k", headers={})
    wakeups_flush()
    assert relay.relay_unread_deliveries(limit=10) == 1
    assert relay.relay_unread_deliveries(limit=10) == 0
    relay.relay_deliveries_picked_up(delivery_ids=[delivery_id])  # a worker took it, and died before reading it
    assert relay.relay_unread_deliveries(limit=10) == 1
    assert driven == [[delivery_id], [], [delivery_id]]


@pytest.mark.django_db
def test_a_relay_run_wakes_every_due_record_of_a_backlog_a_page_to_a_message(monkeypatch, settings):
    # After an outage thousands fall due at once: one run wakes them all, so the workers are not held to a
    # page per run (500 every 30 s is 17 a second, below what Fusion takes).
    backend = "django.core.cache.backends.locmem.LocMemCache"  # room for every id's once-per-window mark
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "relay-backlog", "OPTIONS": {"MAX_ENTRIES": 5000}}}
    pages = []
    monkeypatch.setattr(relay, "records_wake", lambda *, record_ids: pages.append(list(record_ids)))
    conn = make_connection()
    record_accept_many(connection=conn, documents=[(order_document(str(n)), "") for n in range(1200)])
    Record.objects.filter(pk__in=list(Record.objects.values_list("pk", flat=True)[:5])).update(
        lease_until=timezone.now() + timedelta(minutes=5)  # being posted: not woken
    )

    assert tasks.relay_due_records() == 1195
    assert [len(page) for page in pages] == [500, 500, 195]
    assert len({pk for page in pages for pk in page}) == 1195
    assert tasks.relay_due_records() == 0  # woken once per window


@pytest.mark.django_db
def test_a_backlog_still_queued_is_not_woken_again_after_the_window(monkeypatch, settings):
    # The last page of a 1,200-record run waits behind 1,000 others: at 5 a second its window is 60 + 200 s.
    backend = "django.core.cache.backends.locmem.LocMemCache"
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "relay-window", "OPTIONS": {"MAX_ENTRIES": 5000}}}
    pages = []
    monkeypatch.setattr(relay, "records_wake", lambda *, record_ids: pages.append(list(record_ids)))
    record_accept_many(connection=make_connection(), documents=[(order_document(str(n)), "") for n in range(1200)])
    assert tasks.relay_due_records() == 1200

    clock = time.time()
    monkeypatch.setattr(time, "time", lambda: clock + 90)  # three beat ticks later, nothing picked up yet
    assert tasks.relay_due_records() == 500  # the first page's window passed: maybe its message was lost
    monkeypatch.setattr(time, "time", lambda: clock + 170)
    assert tasks.relay_due_records() == 1000  # and the second's (160 s); the last page's lasts 260 s
