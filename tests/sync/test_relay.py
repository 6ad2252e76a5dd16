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
