"""Retention: raw webhook bodies (personal data) are emptied after the retention period; records, deliveries
and the audit trail stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from commerce.deliveries import deliveries_purge
from commerce.models import Delivery, DeliveryRejection
from commerce.rejections import rejection_count, rejections_flush
from sync.tasks import purge_bodies
from tests.factories import make_connection


def make_delivery(conn, *, age_days: float, body: bytes = b'{"eventName":"x"}') -> Delivery:
    return Delivery.objects.create(
        connection=conn,
        status=Delivery.Status.IGNORED,
        verifier="hmac:k",
        body=body,
        received_at=timezone.now() - timedelta(days=age_days),
    )


@pytest.mark.django_db
def test_bodies_older_than_the_retention_are_emptied_and_the_rest_kept(settings):
    settings.CONNECTOR_PAYLOAD_RETENTION_DAYS = 90
    conn = make_connection()
    old = make_delivery(conn, age_days=91, body=b'{"customer_email":"a@b.c"}')
    recent = make_delivery(conn, age_days=89)
    assert deliveries_purge() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert bytes(old.body) == b"" and old.body_purged_at is not None
    assert old.status == "ignored" and old.verifier == "hmac:k"  # the delivery itself stays
    assert bytes(recent.body) == b'{"eventName":"x"}' and recent.body_purged_at is None
    event = AuditEvent.objects.get(action="commerce.bodies_purged")
    assert event.data["purged"] == 1


@pytest.mark.django_db
def test_purge_is_idempotent_and_runs_from_the_beat_task(settings):
    settings.CONNECTOR_PAYLOAD_RETENTION_DAYS = 30
    conn = make_connection()
    for _ in range(3):
        make_delivery(conn, age_days=31)
    assert purge_bodies() == 3
    assert purge_bodies() == 0
    assert Delivery.objects.filter(body_purged_at__isnull=False).count() == 3
    assert AuditEvent.objects.filter(action="commerce.bodies_purged").count() == 1


@pytest.mark.django_db
def test_purge_works_in_batches(settings):
    settings.CONNECTOR_PAYLOAD_RETENTION_DAYS = 1
    conn = make_connection()
    for _ in range(5):
        make_delivery(conn, age_days=2)
    assert deliveries_purge(batch=2) == 5


@pytest.mark.django_db
def test_old_rejection_counters_are_dropped(settings):
    settings.CONNECTOR_PAYLOAD_RETENTION_DAYS = 90
    conn = make_connection()
    rejection_count(connection_id=conn.pk, reason="bad_signature", source_ip="203.0.113.9")
    rejections_flush()
    DeliveryRejection.objects.update(minute=timezone.now() - timedelta(days=91))
    rejection_count(connection_id=conn.pk, reason="bad_signature")
    rejections_flush()
    deliveries_purge()
    assert DeliveryRejection.objects.count() == 1
