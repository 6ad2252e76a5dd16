"""The Finance view of records: review first, reason and hint, plan preview, replay and ignore, timeline."""

from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connector.groups import GROUP_FINANCE
from connector.models import Record
from connector.records import record_accept, record_park
from mappings.models import AccountTemplate
from mappings.plans import plan_to_json
from mappings.services import plan_for_record
from tests.factories import make_connection
from tests.posting import order_document, seed_mappings

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:connector_record_changelist"


@pytest.fixture
def finance(client):
    user = User.objects.create_user("fiona", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_FINANCE))
    client.force_login(user)
    return client


@pytest.fixture
def records(db):
    connection = make_connection()
    seed_mappings(connection)
    posted = record_accept(connection=connection, document=order_document("1")).record
    Record.objects.filter(pk=posted.pk).update(state=Record.State.POSTED, fusion_transaction_number="MAG-00001")
    parked = record_accept(connection=connection, document=order_document("2")).record
    record_park(
        record=parked,
        reason="Fusion has no active customer account 4040.",
        hint="Resolution: correct the customer mapping, then replay.",
    )
    return posted, parked


def test_records_needing_review_come_first_with_reason_and_hint(finance, records):
    posted, parked = records
    page = finance.get(reverse(CHANGELIST)).content.decode()
    assert page.index("00002") < page.index("00001")
    assert "Fusion has no active customer account 4040." in page
    assert "Resolution: correct the customer mapping" in page


def test_record_page_shows_plan_payload_and_timeline_without_calling_fusion(finance, records):
    _, parked = records
    with responses.RequestsMock():  # any HTTP call would fail the test
        page = finance.get(reverse("admin:connector_record_change", args=[parked.pk])).content.decode()
    assert "Posting plan: MAG-00002" in page
    assert "01-000-4110-0000-000" in page  # the revenue account the plan would use
    assert "record.received" in page and "record.needs_review" in page
    assert "LAP-15" in page  # the original document


def test_preview_action_renders_plans_and_sends_nothing(finance, records):
    posted, parked = records
    with responses.RequestsMock():
        response = finance.post(
            reverse(CHANGELIST), {"action": "preview_posting", "_selected_action": [parked.pk, posted.pk]}
        )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing has been sent to Fusion" in page and page.count("Posting plan:") == 2


def test_bulk_replay_records_who_and_why(finance, records):
    _, parked = records
    finance.post(
        reverse(CHANGELIST),
        {"action": "replay", "_selected_action": [parked.pk], "reason": "customer 4040 created in Fusion"},
    )
    parked.refresh_from_db()
    assert parked.state == Record.State.RECEIVED and parked.attempts == 0
    event = AuditEvent.objects.get(action="record.replayed")
    assert event.actor == "fiona" and event.message == "customer 4040 created in Fusion"


def test_single_replay_and_ignore_from_the_record_page(finance, records):
    _, parked = records
    url = reverse("admin:connector_record_decide", args=[parked.pk])
    assert "Replay" in finance.get(url).content.decode()
    finance.post(url, {"ignore": "1", "reason": ""})
    parked.refresh_from_db()
    assert parked.state == Record.State.NEEDS_REVIEW  # ignoring needs a reason
    finance.post(url, {"ignore": "1", "reason": "test order, never shipped"})
    parked.refresh_from_db()
    assert parked.state == Record.State.IGNORED
    assert AuditEvent.objects.filter(action="record.ignored", message="test order, never shipped").exists()


def test_a_posted_record_cannot_be_replayed(finance, records):
    posted, _ = records
    finance.post(reverse(CHANGELIST), {"action": "replay", "_selected_action": [posted.pk], "reason": "again"})
    posted.refresh_from_db()
    assert posted.state == Record.State.POSTED
    assert not AuditEvent.objects.filter(action="record.replayed").exists()


def test_a_viewer_without_replay_permission_cannot_replay(client, records):
    _, parked = records
    user = User.objects.create_user("victor", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_record"))
    client.force_login(user)
    listing = client.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Fusion has no active customer account 4040." in page  # the viewer does see the record...
    assert 'value="replay"' not in page and 'value="mark_ignored"' not in page  # ...but is offered no decision
    decide = reverse("admin:connector_record_decide", args=[parked.pk])
    decide_page = client.get(decide)
    assert decide_page.status_code == 200
    assert "You may view records but not replay or ignore them." in decide_page.content.decode()
    assert 'name="replay"' not in decide_page.content.decode() and 'name="ignore"' not in decide_page.content.decode()
    assert client.post(decide, {"reason": "x"}).status_code == 403
    assert client.post(decide, {"ignore": "1", "reason": "x"}).status_code == 403
    for action in ("replay", "mark_ignored"):
        response = client.post(
            reverse(CHANGELIST), {"action": action, "_selected_action": [parked.pk], "reason": "x"}, follow=True
        )
        assert response.status_code == 200
        shown = [m.message for m in response.context["messages"]]
        assert shown == ["No action selected."], shown  # Django's answer to an action the user is not offered
    parked.refresh_from_db()
    assert parked.state == Record.State.NEEDS_REVIEW
    assert not AuditEvent.objects.filter(action__in=("record.replayed", "record.ignored")).exists()


def test_an_old_record_needing_review_is_first_ahead_of_hundreds_of_newer_posted_ones(finance, records):
    posted, parked = records
    Record.objects.filter(pk=parked.pk).update(created_at=timezone.now() - timedelta(days=30))
    connection = posted.connection
    for n in range(260):
        record = record_accept(connection=connection, document=order_document(str(1000 + n))).record
        Record.objects.filter(pk=record.pk).update(state=Record.State.POSTED, fusion_transaction_id=str(n))
    waiting = record_accept(connection=connection, document=order_document("3")).record
    Record.objects.filter(pk=waiting.pk).update(
        state=Record.State.RETRYING, created_at=timezone.now() - timedelta(days=20)
    )
    response = finance.get(reverse(CHANGELIST))
    rows = list(response.context["cl"].result_list)
    assert [rows[0].pk, rows[1].pk] == [parked.pk, waiting.pk]
    assert rows[2].created_at >= rows[-1].created_at  # then the newest


def test_amounts_show_in_the_currency_decimals(finance, records):
    _, parked = records
    Record.objects.filter(pk=parked.pk).update(grand_total=Decimal("85.9900"), currency="USD")
    yen = record_accept(connection=parked.connection, document=order_document("9", currency="JPY")).record
    Record.objects.filter(pk=yen.pk).update(grand_total=Decimal("12000.0000"))
    page = finance.get(reverse(CHANGELIST)).content.decode()
    assert "85.99 USD" in page and "85.9900" not in page
    assert "12,000 JPY" in page


def test_a_long_reason_is_shortened_in_the_list_and_whole_on_hover(finance, records):
    _, parked = records
    reason = "Fusion refused the invoice: " + "the account combination is end-dated in the ledger; " * 8
    Record.objects.filter(pk=parked.pk).update(last_error=reason)
    page = finance.get(reverse(CHANGELIST)).content.decode()
    assert f'title="{reason}"' in page
    assert reason not in page.replace(f'title="{reason}"', "")  # not shown whole outside the hover text


def test_a_posted_record_shows_the_plan_as_sent_without_next_attempt_or_replay(finance, records):
    posted, _ = records
    sent = plan_for_record(posted)
    Record.objects.filter(pk=posted.pk).update(fusion_transaction_id="300000123", plan=plan_to_json(sent))
    # The mappings change after posting: the page must still show what was sent.
    AccountTemplate.objects.filter(connection=posted.connection, account_class="revenue").update(
        combination="01-000-4999-0000-000"
    )
    with responses.RequestsMock():
        page = finance.get(reverse("admin:connector_record_change", args=[posted.pk])).content.decode()
    assert "Sent to Fusion as <strong>MAG-00001</strong>" in page
    assert "01-000-4110-0000-000" in page and "01-000-4999-0000-000" not in page
    assert "Replay or ignore" not in page
    assert "none: nothing more to do" in page


def test_outcome_unknown_is_said_only_when_it_is_true(finance, records):
    posted, parked = records
    explanation = "Fusion did not answer the last create"
    page = finance.get(reverse("admin:connector_record_change", args=[parked.pk])).content.decode()
    assert explanation not in page
    Record.objects.filter(pk=parked.pk).update(outcome_unknown=True)
    page = finance.get(reverse("admin:connector_record_change", args=[parked.pk])).content.decode()
    assert explanation in page
    Record.objects.filter(pk=posted.pk).update(outcome_unknown=True, fusion_transaction_id="300000123")
    page = finance.get(reverse("admin:connector_record_change", args=[posted.pk])).content.decode()
    assert explanation not in page
