import random
import statistics
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


@pytest.mark.django_db
def test_the_retry_delay_grows_with_each_attempt_jittered_up_to_the_cap(monkeypatch):
    # base 10 s, cap 160 s: the documented full jitter draws attempt n's delay from [0, min(160, 10 * 2**(n-1))].
    monkeypatch.setattr("connector.records.random", random.Random(20261102))  # many draws, repeatable
    conn = make_connection(retry_base_seconds=10, retry_cap_seconds=160, retry_max_attempts=100)
    record = record_accept(connection=conn, document=_order()).record
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    delays: dict[int, list[float]] = {}
    for attempt in range(1, 7):
        for _ in range(100):
            record.attempts = attempt - 1
            record = record_retry_later(record=record, error=TransientError("Fusion answered 503"), now=now)
            assert record.attempts == attempt and record.state == Record.State.RETRYING
            delays.setdefault(attempt, []).append((record.next_attempt_at - now).total_seconds())
    scheduled = AuditEvent.objects.filter(action="record.retry_scheduled").order_by("-id").first()
    assert scheduled.data["delay_seconds"] == pytest.approx(delays[6][-1], abs=0.06)

    ceilings = {1: 10, 2: 20, 3: 40, 4: 80, 5: 160, 6: 160}  # the sixth would be 320 without the cap
    means = {}
    for attempt, drawn in delays.items():
        ceiling = ceilings[attempt]
        assert all(0 <= d <= ceiling for d in drawn), (attempt, max(drawn))
        # Spread over the whole range, not one value: uniform draws have a deviation of ceiling / sqrt(12).
        assert min(drawn) < 0.2 * ceiling and max(drawn) > 0.8 * ceiling
        assert statistics.pstdev(drawn) > 0.2 * ceiling
        means[attempt] = statistics.fmean(drawn)
        assert means[attempt] == pytest.approx(ceiling / 2, rel=0.25)
    for attempt in range(1, 5):  # about 5, 10, 20, 40, 80 s: doubling until the cap
        assert means[attempt + 1] > 1.4 * means[attempt]
    assert means[6] == pytest.approx(means[5], rel=0.3)


@pytest.mark.django_db
def test_a_retry_after_longer_than_the_backoff_sets_the_next_attempt():
    conn = make_connection(retry_base_seconds=10, retry_cap_seconds=160, retry_max_attempts=100)
    record = record_accept(connection=conn, document=_order()).record
    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    record = record_retry_later(record=record, error=TransientError("429", retry_after=900), now=now)
    assert record.next_attempt_at - now == timedelta(seconds=900)
