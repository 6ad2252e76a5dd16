import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.db import transaction

from audit.models import AuditEvent
from connector.documents import SalesDocument, SalesLine
from connector.models import Connection, Record
from connector.records import backoff_delay, record_accept, record_claim, record_renew_lease, record_retry_later
from core.errors import TransientError
from tests.factories import make_connection


def _order(entity_id="7", total="10.00"):
    return SalesDocument(
        kind="order",
        entity_id=entity_id,
        increment_id=f"00000000{entity_id}",
        created_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
        currency="USD",
        grand_total=Decimal(total),
        lines=(
            SalesLine(
                line_id="1",
                sku="SKU-1",
                name="Thing",
                qty=Decimal(1),
                unit_price=Decimal(total),
                row_total=Decimal(total),
            ),
        ),
    )


def test_backoff_is_full_jitter_capped():
    rng = random.Random(1)
    delays = [backoff_delay(attempt=a, base=30, cap=3600, rng=rng) for a in range(1, 30)]
    assert all(0 <= d <= 3600 for d in delays)
    assert max(backoff_delay(attempt=1, base=30, cap=3600, rng=random.Random(s)) for s in range(200)) <= 30
    assert max(backoff_delay(attempt=20, base=30, cap=3600, rng=random.Random(s)) for s in range(200)) > 1800


@pytest.mark.django_db
def test_document_round_trips_through_json_without_losing_money():
    doc = _order(total="1299.9950")
    assert SalesDocument.from_json(doc.to_json()) == doc


@pytest.mark.django_db
def test_record_accept_makes_one_record_for_duplicates():
    conn = make_connection()
    first = record_accept(connection=conn, document=_order())
    again = record_accept(connection=conn, document=_order())
    assert first.created and not again.created
    assert Record.objects.count() == 1
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "record.received",
        "record.duplicate",
    ]


@pytest.mark.django_db
def test_claim_is_exclusive_until_the_lease_expires():
    conn = make_connection()
    record = record_accept(connection=conn, document=_order()).record
    assert record_claim(record_id=record.pk, worker="a") is not None
    assert record_claim(record_id=record.pk, worker="b") is None
    later = datetime.now(UTC) + timedelta(hours=1)
    assert record_claim(record_id=record.pk, worker="b", now=later).leased_by == "b"


@pytest.mark.django_db
def test_retries_run_out_and_park_the_record():
    conn = make_connection(retry_max_attempts=2)
    record = record_accept(connection=conn, document=_order()).record
    record = record_retry_later(record=record, error=TransientError("Fusion answered 503"))
    assert record.state == Record.State.RETRYING and record.attempts == 1
    assert record.next_attempt_at > datetime.now(UTC) - timedelta(seconds=1)
    record = record_retry_later(record=record, error=TransientError("Fusion answered 503"))
    assert record.state == Record.State.NEEDS_REVIEW
    assert record.resolution_hint.startswith("Resolution:")


@pytest.mark.django_db
def test_a_worker_whose_lease_ran_out_cannot_renew_it():
    conn = make_connection()
    record = record_accept(connection=conn, document=_order()).record
    first = record_claim(record_id=record.pk)
    assert record_renew_lease(record=first)
    later = datetime.now(UTC) + timedelta(hours=1)
    second = record_claim(record_id=record.pk, now=later)
    assert second is not None and second.leased_by != first.leased_by
    assert not record_renew_lease(record=first, now=later)
    assert record_renew_lease(record=second, now=later)


@pytest.mark.django_db(transaction=True)
def test_a_lock_on_the_connection_row_does_not_stop_claims(postgres_only):
    conn = make_connection()
    record = record_accept(connection=conn, document=_order()).record
    locked, release = threading.Event(), threading.Event()

    def hold_connection_lock():
        with transaction.atomic():
            Connection.objects.select_for_update().get(pk=conn.pk)
            locked.set()
            release.wait(10)
        db_connection.close()

    holder = threading.Thread(target=hold_connection_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert record_claim(record_id=record.pk) is not None
    finally:
        release.set()
        holder.join()


@pytest.mark.django_db
def test_an_unreadable_document_is_a_parked_record_that_never_takes_a_real_documents_place():
    from connector.records import record_unreadable

    conn = make_connection()
    real = record_accept(connection=conn, document=_order(entity_id="88")).record
    parked = record_unreadable(
        connection=conn, kind="order", key="88", reason="grand_total is out of range", source="webhook", actor="t"
    )
    again = record_unreadable(connection=conn, kind="order", key="88", reason="again", source="webhook", actor="t")
    assert parked.created and not again.created and again.record.pk == parked.record.pk
    assert parked.record.pk != real.pk and parked.record.commerce_entity_id == "!88"
    assert parked.record.state == Record.State.NEEDS_REVIEW and parked.record.grand_total is None
    assert record_accept(connection=conn, document=_order(entity_id="88")).record.pk == real.pk
