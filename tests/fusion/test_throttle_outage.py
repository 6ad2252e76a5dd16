"""When Fusion answers again after an outage, the first success brings the records waiting on their backoff
forward, paced at the connection's ceiling; a stray failure or Fusion's throttling does not."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from audit.models import AuditEvent
from connector.models import Record
from connector.records import record_accept
from core.errors import TransientError
from fusion import throttle
from tests.factories import make_connection
from tests.posting import order_document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    throttle._failing_seen.clear()


class FlakyFusion:
    """Answers with `error` while it is set, then succeeds."""

    def __init__(self, error=None):
        self.error = error

    def get(self, resource, params=None):
        if self.error:
            raise self.error
        return {"items": []}


def _waiting_records(conn, count, *, in_seconds=900):
    ids = []
    for n in range(count):
        record = record_accept(connection=conn, document=order_document(str(1000 + n))).record
        Record.objects.filter(pk=record.pk).update(
            state=Record.State.RETRYING, attempts=3, next_attempt_at=timezone.now() + timedelta(seconds=in_seconds)
        )
        ids.append(record.pk)
    return ids


def _seconds_to_next_attempt(ids):
    now = timezone.now()
    return sorted((Record.objects.get(pk=pk).next_attempt_at - now).total_seconds() for pk in ids)


def _outage(paced, fusion, error, monkeypatch, *, lasting):
    fusion.error = error
    with pytest.raises(TransientError):
        paced.get("x")
    clock = throttle.time.time() + lasting
    monkeypatch.setattr(throttle.time, "time", lambda: clock)
    fusion.error = None


def test_fusion_back_after_an_outage_brings_the_waiting_records_forward_at_the_ceiling(monkeypatch):
    conn = make_connection(fusion_max_concurrency=2, fusion_max_rps=1000)
    ids = _waiting_records(conn, 6)
    fusion = FlakyFusion()
    paced = throttle.PacedClient(fusion, conn)
    _outage(paced, fusion, TransientError("503", status=503), monkeypatch, lasting=60)
    monkeypatch.setattr(throttle, "MIN_CALL_SECONDS", 0.5)  # as if each call took half a second

    paced.get("x")  # Fusion answers again

    # 2 calls at once, 0.5 s a call, 2 calls a record: 2 records a second, the first ones due now.
    waits = _seconds_to_next_attempt(ids)
    assert waits == pytest.approx([0, 0, 1, 1, 2, 2], abs=0.5)
    event = AuditEvent.objects.get(action="records.retry_sooner")
    assert event.actor == "system:fusion-back" and event.data["records"] == 6
    assert event.data["per_second"] == pytest.approx(2)

    paced.get("x")  # once per outage: the next success changes nothing
    assert AuditEvent.objects.filter(action="records.retry_sooner").count() == 1


def test_a_stray_failure_or_throttling_brings_nothing_forward(monkeypatch):
    conn = make_connection()
    ids = _waiting_records(conn, 2)
    fusion = FlakyFusion()
    paced = throttle.PacedClient(fusion, conn)
    _outage(paced, fusion, TransientError("503", status=503), monkeypatch, lasting=1)  # one stray 503
    paced.get("x")
    _outage(paced, fusion, TransientError("429", status=429), monkeypatch, lasting=60)  # Fusion throttles us
    paced.get("x")
    assert min(_seconds_to_next_attempt(ids)) > 800
    assert not AuditEvent.objects.filter(action="records.retry_sooner").exists()
