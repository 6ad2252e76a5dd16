"""Replay and ignore are a finance user's decisions; they are refused while a worker holds the record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connector.groups import GROUP_FINANCE
from connector.models import Record
from connector.records import record_accept, record_claim, record_retry_later
from core.errors import TransientError
from sync.replay import record_ignore, record_replay
from tests.factories import make_connection
from tests.posting import order_document

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:connector_record_changelist"
REFUSAL = "A worker is posting this record right now"


@pytest.fixture
def waiting(db):
    """A record waiting for its next attempt after a transient failure."""
    connection = make_connection(retry_base_seconds=0, retry_cap_seconds=0)
    record = record_accept(connection=connection, document=order_document("5")).record
    return record_retry_later(record=record, error=TransientError("Fusion answered 503"))


@pytest.fixture
def leased(waiting):
    """The same record while a worker holds it (claimed for its next attempt, mid-step)."""
    claimed = record_claim(record_id=waiting.pk, worker="worker-a:1:abc")
    assert claimed is not None and claimed.state == Record.State.RETRYING
    return claimed


@pytest.fixture
def finance(client):
    user = User.objects.create_user("fiona", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_FINANCE))
    client.force_login(user)
    return client


def _row(record: Record) -> dict:
    return model_to_dict(Record.objects.get(pk=record.pk))


def _decisions() -> int:
    return AuditEvent.objects.filter(action__in=("record.replayed", "record.ignored")).count()


@pytest.mark.parametrize("decide", [record_replay, record_ignore], ids=["replay", "ignore"])
def test_a_decision_on_a_record_a_worker_holds_is_refused_and_changes_nothing(leased, decide):
    before = _row(leased)
    with pytest.raises(ValueError, match=REFUSAL):
        decide(record=leased, actor="fiona", reason="customer fixed")
    assert _row(leased) == before  # state, attempts, timer and the worker's lease as they were
    assert before["leased_by"] == "worker-a:1:abc"
    assert _decisions() == 0  # nothing decided, nothing audited


@pytest.mark.parametrize(
    ("decide", "state"),
    [(record_replay, Record.State.RECEIVED), (record_ignore, Record.State.IGNORED)],
    ids=["replay", "ignore"],
)
def test_the_same_decision_goes_through_once_the_lease_ran_out(leased, decide, state):
    Record.objects.filter(pk=leased.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    decided = decide(record=leased, actor="fiona", reason="customer fixed")
    assert decided.state == state
    assert _decisions() == 1


def test_the_record_page_shows_the_refusal_and_leaves_the_record(finance, leased):
    before = _row(leased)
    url = reverse("admin:connector_record_decide", args=[leased.pk])
    for post in ({"reason": "customer fixed"}, {"ignore": "1", "reason": "test order"}):
        page = finance.post(url, post, follow=True).content.decode()
        assert REFUSAL in page
        assert "queued for replay" not in page and "marked ignored" not in page
    assert _row(leased) == before
    assert _decisions() == 0


@pytest.mark.parametrize(("action", "done"), [("replay", "queued for replay"), ("mark_ignored", "marked ignored")])
def test_the_bulk_actions_show_the_refusal_and_leave_the_record(finance, leased, action, done):
    before = _row(leased)
    response = finance.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [leased.pk], "reason": "customer fixed"},
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert REFUSAL in page and done not in page
    assert _row(leased) == before
    assert _decisions() == 0
