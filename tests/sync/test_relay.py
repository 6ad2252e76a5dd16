"""The relay wakes what is due, once per window, so a lost wake-up costs a delay and never a document."""

import pytest
from django.core.cache import cache

from connector.records import record_accept
from sync import relay
from tests.factories import make_connection
from tests.posting import order_document


@pytest.mark.django_db
def test_relay_wakes_a_due_record_once_per_window(monkeypatch):
    cache.clear()
    woken = []
    monkeypatch.setattr(relay, "record_wake", lambda *, record_id: woken.append(record_id))
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
