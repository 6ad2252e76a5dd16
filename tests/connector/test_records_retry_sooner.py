"""After an outage, the records waiting on their backoff come back at the pace given, earliest first, instead of
trickling back at their retry times; the ones whose outcome is unknown keep their safety delay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from connector.models import Record
from connector.records import record_accept, records_retry_sooner
from tests.factories import make_connection
from tests.posting import order_document

pytestmark = pytest.mark.django_db


NOW = timezone.now() + timedelta(days=1)  # a fixed "now" the test's own slowness cannot move


def _waiting(conn, number, *, in_seconds, attempts=1, **fields):
    record = record_accept(connection=conn, document=order_document(str(number))).record
    Record.objects.filter(pk=record.pk).update(
        state=Record.State.RETRYING,
        attempts=attempts,
        next_attempt_at=NOW + timedelta(seconds=in_seconds),
        **fields,
    )
    return record.pk


def _next_attempts(ids, now):
    return [(Record.objects.get(pk=pk).next_attempt_at - now).total_seconds() for pk in ids]


def test_waiting_records_come_back_earliest_first_at_the_pace_given():
    conn = make_connection()
    other = make_connection()
    # Waiting 100 .. 900 s, made in shuffled order: the earliest due comes back first.
    ids = {wait: _waiting(conn, 100 + wait, in_seconds=wait) for wait in (500, 100, 900, 300, 700, 200)}
    elsewhere = _waiting(other, 99, in_seconds=600)
    now = NOW

    assert records_retry_sooner(connection_id=conn.pk, per_second=2, limit=100, now=now) == 6

    # Two a second from now, in the order they were due.
    assert _next_attempts([ids[w] for w in (100, 200, 300, 500, 700, 900)], now) == [0, 0, 1, 1, 2, 2]
    assert _next_attempts([elsewhere], now)[0] > 590  # another connection's outage is not this one's
    event = AuditEvent.objects.get(action="records.retry_sooner")
    assert event.connection_id == conn.pk and event.data["records"] == 6


def test_unknown_outcomes_new_records_and_sooner_ones_keep_their_time():
    conn = make_connection()
    unknown = _waiting(conn, 1, in_seconds=120, outcome_unknown=True)  # a create may still be running in Fusion
    never_tried = _waiting(conn, 2, in_seconds=300, attempts=0)  # waiting on something else, not a failure
    first = _waiting(conn, 3, in_seconds=0.4)
    sooner = _waiting(conn, 4, in_seconds=0.7)  # due before the slot it would get (1 s)
    later = [_waiting(conn, 10 + n, in_seconds=600 + n) for n in range(3)]
    now = NOW

    assert records_retry_sooner(connection_id=conn.pk, per_second=1, limit=100, now=now) == 4

    assert _next_attempts([unknown], now)[0] > 110
    assert _next_attempts([never_tried], now)[0] > 290
    assert _next_attempts([first], now) == [0]
    assert 0.5 < _next_attempts([sooner], now)[0] <= 0.7
    assert _next_attempts(later, now) == [2, 3, 4]


def test_at_most_the_limit_come_back_and_nothing_moved_writes_no_event():
    conn = make_connection()
    ids = [_waiting(conn, n, in_seconds=600 + n) for n in range(4)]
    now = NOW
    assert records_retry_sooner(connection_id=conn.pk, per_second=10, limit=3, now=now) == 3
    assert _next_attempts(ids, now)[:3] == [0, 0, 0] and _next_attempts(ids, now)[3] > 590

    assert records_retry_sooner(connection_id=make_connection().pk, per_second=10, limit=3, now=NOW) == 0
    assert AuditEvent.objects.filter(action="records.retry_sooner").count() == 1
