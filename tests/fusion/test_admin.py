import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from audit.models import AuditEvent
from connector.groups import GROUP_FINANCE
from fusion.models import AccountCombination, JournalBatch
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_client(client):
    user = User.objects.create_user("fiona", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_FINANCE))
    client.force_login(user)
    return client


def test_finance_sees_batches_and_cached_reference_data(finance_client):
    connection = make_connection()
    JournalBatch.objects.create(connection=connection, group_id=1, name="SHOP-1", state="needs_review")
    AccountCombination.objects.create(connection=connection, combination="01-000-4110-0000-000")
    assert "SHOP-1" in finance_client.get(reverse("admin:fusion_journalbatch_changelist")).content.decode()
    page = finance_client.get(reverse("admin:fusion_accountcombination_changelist")).content.decode()
    assert "01-000-4110-0000-000" in page


def test_resubmit_action_needs_a_reason_and_is_audited(finance_client):
    connection = make_connection()
    batch = JournalBatch.objects.create(connection=connection, group_id=2, name="SHOP-2", state="needs_review")
    url = reverse("admin:fusion_journalbatch_changelist")
    finance_client.post(url, {"action": "resubmit", "_selected_action": [batch.pk], "reason": ""})
    batch.refresh_from_db()
    assert batch.state == JournalBatch.State.NEEDS_REVIEW

    finance_client.post(url, {"action": "resubmit", "_selected_action": [batch.pk], "reason": "nothing imported"})
    batch.refresh_from_db()
    assert batch.state == JournalBatch.State.SUPERSEDED
    assert AuditEvent.objects.filter(action="journal.resubmitted", actor="fiona").exists()


def test_user_without_replay_permission_cannot_resubmit(client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_journalbatch"))
    client.force_login(user)
    batch = JournalBatch.objects.create(connection=make_connection(), group_id=3, name="SHOP-3", state="needs_review")
    url = reverse("admin:fusion_journalbatch_changelist")
    listing = client.get(url)
    assert listing.status_code == 200
    assert "SHOP-3" in listing.content.decode()  # the viewer sees the batch...
    assert 'value="resubmit"' not in listing.content.decode()  # ...and is offered neither decision
    assert 'value="mark_imported"' not in listing.content.decode()
    for action in ("resubmit", "mark_imported"):
        response = client.post(url, {"action": action, "_selected_action": [batch.pk], "reason": "x"}, follow=True)
        assert response.status_code == 200
        shown = [m.message for m in response.context["messages"]]
        assert not [m for m in shown if "SHOP-3" in m], shown  # the action never ran on the batch
    batch.refresh_from_db()
    assert batch.state == JournalBatch.State.NEEDS_REVIEW
    assert not AuditEvent.objects.filter(action__startswith="journal.").exists()
