"""The door's hand-written SQL (commerce/sql.py) writes the rows the ORM would write."""

from datetime import UTC, datetime

import pytest
from django.db import connection as db_connection
from django.forms.models import model_to_dict

from commerce.models import Delivery, DeliveryRejection
from commerce.sql import deliveries_read, delivery_insert, rejections_add
from tests.factories import make_connection

WHEN = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def _row(instance, *, leave_out=("id",)) -> dict:
    values = model_to_dict(instance, fields=[f.name for f in instance._meta.concrete_fields])
    for name in leave_out:
        values.pop(name, None)
    for name, value in values.items():
        if isinstance(value, memoryview):
            values[name] = bytes(value)
    return values


@pytest.mark.django_db
@pytest.mark.parametrize("source_ip", ["203.0.113.9", None])
def test_a_delivery_inserted_by_hand_is_the_row_the_orm_writes(source_ip):
    conn = make_connection()
    given = {
        "received_at": WHEN,
        "verifier": "hmac:primary",
        "event_name": "plugin.magento.sales.api.order_management.place",
        "request_id": "req-1",
        "source_ip": source_ip,
        "headers": {"content-type": "application/json", "x-commerce-signature": "***", "user-agent": "Ünïcode"},
        "body": b'{"eventName":"x","data":{"order":{"entity_id":"1","url":"a\\/b"}}}\x00\xff',
    }
    by_hand = Delivery.objects.get(pk=delivery_insert(db_connection, connection_id=conn.pk, **given))
    by_orm = Delivery.objects.create(connection=conn, status=Delivery.Status.RECEIVED, **given)
    assert _row(by_hand) == _row(by_orm)
    assert by_hand.status == "received" and by_hand.record_id is None and by_hand.body_sha256 == ""


@pytest.mark.django_db
def test_rejection_counts_added_by_hand_are_the_rows_the_orm_writes():
    conn = make_connection()
    minute = WHEN.replace(second=0, microsecond=0)
    rejections_add(
        db_connection,
        [
            (f"c{conn.pk}", conn.pk, "bad_signature", minute, 3, WHEN, "203.0.113.9", "HMAC does not match"),
            ("unknown", None, "unknown_connection", minute, 2, WHEN, None, "no-such-shop"),
        ],
    )
    rejections_add(db_connection, [(f"c{conn.pk}", conn.pk, "bad_signature", minute, 4, WHEN, None, "again")])
    by_hand = {r.reason: _row(r, leave_out=("id", "connection")) for r in DeliveryRejection.objects.all()}
    expected = {
        "bad_signature": DeliveryRejection(
            scope=f"c{conn.pk}",
            reason="bad_signature",
            minute=minute,
            count=7,
            last_seen_at=WHEN,
            last_source_ip=None,
            last_detail="again",
        ),
        "unknown_connection": DeliveryRejection(
            scope="unknown",
            reason="unknown_connection",
            minute=minute,
            count=2,
            last_seen_at=WHEN,
            last_source_ip=None,
            last_detail="no-such-shop",
        ),
    }
    assert by_hand == {reason: _row(row, leave_out=("id", "connection")) for reason, row in expected.items()}
    assert DeliveryRejection.objects.get(reason="bad_signature").connection == conn


@pytest.mark.django_db
def test_a_batch_of_deliveries_read_by_hand_is_the_rows_the_orm_update_writes():
    from connector.models import Record

    conn = make_connection()
    record = Record.objects.create(connection=conn, kind="order", commerce_entity_id="1", document={}, currency="USD")
    given = {"verifier": "hmac:k", "headers": {"a": "b"}, "body": b"{}", "received_at": WHEN}
    by_hand = [Delivery.objects.create(connection=conn, status="received", **given) for _ in range(2)]
    by_orm = [Delivery.objects.create(connection=conn, status="received", **given) for _ in range(2)]
    outcomes = [
        {
            "status": "accepted",
            "event_name": "observer.x",
            "request_id": "r-1",
            "note": "",
            "record_id": record.pk,
            "body_sha256": "a" * 64,
        },
        {
            "status": "ignored",
            "event_name": "ünïcode ' quote",
            "request_id": "",
            "note": "not handled",
            "record_id": None,
            "body_sha256": "b" * 64,
        },
    ]
    deliveries_read(db_connection, [(d.pk, *o.values()) for d, o in zip(by_hand, outcomes, strict=True)])
    for delivery, outcome in zip(by_orm, outcomes, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(**outcome)
    for hand, orm in zip(by_hand, by_orm, strict=True):
        hand.refresh_from_db()
        orm.refresh_from_db()
        assert _row(hand) == _row(orm)
    assert by_hand[0].record == record and by_hand[1].note == "not handled"
