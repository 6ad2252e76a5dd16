"""A worker whose lease ran out mid-step touches nothing: no call to Fusion, no write to the record."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.core.cache import cache
from django.forms.models import model_to_dict
from django.utils import timezone

from audit.models import AuditEvent
from connector.models import Record
from connector.records import record_accept
from core.http import clock as http_clock
from sync.flows.sales_documents import record_process
from tests.factories import make_connection
from tests.fake_fusion import FakeFusion
from tests.posting import order_document, seed_mappings

OTHER_WORKER = "other-host:4242:0123456789ab"


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


class HookedFusion(FakeFusion):
    """The fake Fusion, running `on_lookup()` once, while the worker looks the document up (after its claim,
    before any create), and keeping the record as it was right after."""

    on_lookup = None

    def __init__(self, rsps) -> None:
        self.after_hook: dict = {}
        super().__init__(rsps)

    lookup_answer = None  # what the look-up answers instead of the documents, once on_lookup set it

    def lookup(self, request):
        if self.on_lookup is not None and not self.after_hook:
            self.on_lookup()
            self.after_hook.update(_snapshot(Record.objects.get().pk))
        if self.lookup_answer is not None:
            return self.lookup_answer
        return super().lookup(request)


@pytest.fixture
def fusion():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield HookedFusion(rsps)


@pytest.fixture
def record(db):
    conn = make_connection(transaction_number_prefix="MAG-", retry_base_seconds=0, retry_cap_seconds=0)
    seed_mappings(conn)
    return record_accept(connection=conn, document=order_document()).record


def _snapshot(pk: int) -> dict:
    return model_to_dict(Record.objects.get(pk=pk))


def _actions(record: Record) -> list[str]:
    return list(AuditEvent.objects.filter(target_id=str(record.pk)).order_by("id").values_list("action", flat=True))


def test_a_lease_taken_over_before_the_create_stops_the_step_before_fusion_and_the_record(record, fusion):
    def taken_over():
        Record.objects.filter(pk=record.pk).update(
            leased_by=OTHER_WORKER, lease_until=timezone.now() + timedelta(minutes=5)
        )

    fusion.on_lookup = taken_over
    assert record_process(record_id=record.pk) == "lease_lost"
    before = fusion.after_hook
    assert before, "the worker never reached the look-up"
    assert fusion.posts == []  # no create was sent
    after = _snapshot(record.pk)
    assert after == before  # not a field written after the lease was lost, the new holder's lease kept
    assert after["leased_by"] == OTHER_WORKER and after["state"] == Record.State.RECEIVED
    assert after["posting_identities"] == [] and after["attempts"] == 0
    assert "record.post_attempt" not in _actions(record)
    assert "record.retry_scheduled" not in _actions(record)


def test_a_lease_that_simply_ran_out_before_the_create_sends_nothing(record, fusion):
    def ran_out():
        Record.objects.filter(pk=record.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    fusion.on_lookup = ran_out
    assert record_process(record_id=record.pk) == "lease_lost"
    before = fusion.after_hook
    assert fusion.posts == []
    after = _snapshot(record.pk)
    assert after["state"] == Record.State.RECEIVED and after["attempts"] == before["attempts"] == 0
    assert after["posting_identities"] == [] and after["next_attempt_at"] == before["next_attempt_at"]
    assert "record.post_attempt" not in _actions(record)
    # Nobody else holds it: the next claim posts it, once.
    assert record_process(record_id=record.pk) == "done"
    assert Record.objects.get(pk=record.pk).state == Record.State.POSTED and len(fusion.posts) == 1


def test_a_worker_whose_lease_was_taken_during_the_create_does_not_mark_it_posted(record, fusion):
    def created_then_taken_over(body):
        answer = fusion.store(body)
        Record.objects.filter(pk=record.pk).update(
            leased_by=OTHER_WORKER, lease_until=timezone.now() + timedelta(minutes=5)
        )
        return answer

    fusion.post_failures.append(created_then_taken_over)
    assert record_process(record_id=record.pk) == "lease_lost"
    assert len(fusion.posts) == 1
    stolen = Record.objects.get(pk=record.pk)
    assert stolen.state == Record.State.RECEIVED  # not marked posted by the worker that lost it
    assert stolen.fusion_transaction_id == "" and stolen.fusion_transaction_number == ""
    assert stolen.posted_at is None and stolen.last_error == ""
    assert stolen.leased_by == OTHER_WORKER  # the new holder's lease is left alone
    assert "record.document_posted" not in _actions(record)

    # The new holder (here: the next claim once its lease runs out) adopts what the first worker created.
    Record.objects.filter(pk=record.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert record_process(record_id=record.pk) == "done"
    posted = Record.objects.get(pk=record.pk)
    assert posted.state == Record.State.POSTED and posted.fusion_transaction_number == "MAG-000012345"
    assert len(fusion.posts) == 1
    assert _actions(record).count("record.document_adopted") == 1


@pytest.mark.parametrize(
    "answer", [(503, {}, "{}"), (400, {}, '{"title": "Bad Request"}')], ids=["transient", "permanent"]
)
def test_a_worker_whose_lease_was_taken_leaves_its_failure_to_the_new_holder(record, fusion, monkeypatch, answer):
    monkeypatch.setattr(http_clock, "sleep", lambda seconds: None)

    def taken_over_then_failed():
        Record.objects.filter(pk=record.pk).update(
            leased_by=OTHER_WORKER, lease_until=timezone.now() + timedelta(minutes=5)
        )
        fusion.lookup_answer = answer

    fusion.on_lookup = taken_over_then_failed
    record_process(record_id=record.pk)
    before = fusion.after_hook
    assert before, "the worker never reached the look-up"
    assert fusion.posts == []
    after = _snapshot(record.pk)
    # The new holder's lease, state, attempt count and timer are as it left them: the stale worker's failure
    # is not counted against the record, nor does it park the record under the new holder.
    assert after == before
    assert "record.retry_scheduled" not in _actions(record) and "record.needs_review" not in _actions(record)


def test_a_worker_that_lost_its_lease_right_after_its_claim_does_not_take_the_new_holders(record, fusion, monkeypatch):
    # The worker stalls between its claim and its first step (a long pause, a slow database) until its lease
    # runs out and another worker claims the record: it must not go on under the other worker's lease.
    def stalled_until_taken_over(*, record_id):
        Record.objects.filter(pk=record_id).update(
            leased_by=OTHER_WORKER, lease_until=timezone.now() + timedelta(minutes=5)
        )

    monkeypatch.setattr("sync.flows.sales_documents.relay_picked_up", stalled_until_taken_over)
    assert record_process(record_id=record.pk) == "lease_lost"
    assert fusion.posts == []
    after = Record.objects.get(pk=record.pk)
    assert after.state == Record.State.RECEIVED and after.posting_identities == []
    assert after.leased_by == OTHER_WORKER and after.lease_until > timezone.now()
    assert "record.post_attempt" not in _actions(record)
