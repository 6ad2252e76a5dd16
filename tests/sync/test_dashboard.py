"""The admin index as the finance dashboard: per connection what needs review, what waits and since when, what
went through, when webhooks and scheduled jobs last came, the journal batches, and red when something is late or
failed. The figures come in a fixed number of queries however many records there are."""

import re
from datetime import timedelta
from html import unescape
from itertools import count

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from commerce.backfill import backfill_checked, backfill_run
from commerce.models import Delivery
from connector.groups import GROUP_FINANCE, GROUP_INTEGRATION_ADMIN
from connector.models import Record
from connector.records import record_accept
from fusion.models import JournalBatch
from sync.dashboard import dashboard, duration_words
from sync.flows.fusion_runs import last_checked_key
from sync.models import ReconciliationRun, Stream, SyncRun, SyncStream
from tests.commerce.test_backfill import FakeCommerce
from tests.factories import make_connection
from tests.posting import order_document

pytestmark = pytest.mark.django_db
INDEX = "admin:index"
_ids = count(1)


@pytest.fixture
def now():
    # Midday, so that "today" and "the last hour" do not cross midnight.
    return timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)


def _record(connection, state, *, created=None, posted=None):
    record = record_accept(connection=connection, document=order_document(str(next(_ids)))).record
    Record.objects.filter(pk=record.pk).update(
        state=state, created_at=created or timezone.now(), posted_at=posted, fusion_transaction_number=""
    )
    return record


def _delivery(connection, *, at, status=Delivery.Status.ACCEPTED):
    return Delivery.objects.create(connection=connection, status=status, verifier="hmac:test", received_at=at)


def _batch(connection, state):
    n = next(_ids)
    return JournalBatch.objects.create(connection=connection, state=state, group_id=900_000 + n, name=f"batch {n}")


def _board(connection, now):
    return next(b for b in dashboard(now=now) if b.connection.pk == connection.pk)


def _login(client, username, *groups):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    client.force_login(user)
    return client


def test_figures_match_the_records_deliveries_and_batches_of_each_connection(now):
    shop, other = make_connection(name="A shop"), make_connection(name="B shop")
    for _ in range(2):
        _record(shop, Record.State.NEEDS_REVIEW, created=now - timedelta(days=2))
    for minutes in (3, 7, 9):
        _record(shop, Record.State.RETRYING, created=now - timedelta(minutes=minutes))
    _record(shop, Record.State.RECEIVED, created=now - timedelta(minutes=4))
    _record(shop, Record.State.POSTED, created=now - timedelta(minutes=40), posted=now - timedelta(minutes=30))
    _record(shop, Record.State.POSTED, created=now - timedelta(hours=4), posted=now - timedelta(hours=3))
    _record(shop, Record.State.LINKED, created=now - timedelta(days=1, hours=1), posted=now - timedelta(days=1))
    _record(shop, Record.State.IGNORED, created=now - timedelta(days=3))
    _record(other, Record.State.NEEDS_REVIEW)
    _delivery(shop, at=now - timedelta(minutes=2, seconds=5))
    _delivery(shop, at=now - timedelta(hours=1))
    _batch(shop, JournalBatch.State.OPEN)
    _batch(shop, JournalBatch.State.RUNNING)
    _batch(shop, JournalBatch.State.SUCCEEDED)

    board = _board(shop, now)

    assert (board.needs_review, board.retrying) == (2, 3)
    # Parked (needs review) and ignored records are not pending: the oldest pending is the 9-minute retry.
    assert board.oldest_pending_at == now - timedelta(minutes=9)
    assert board.oldest_pending_age == "9 min"
    assert (board.posted_today, board.posted_last_hour) == (2, 1)
    assert board.last_webhook_at == now - timedelta(minutes=2, seconds=5)
    assert board.last_webhook_age == "2 min"
    assert (board.batches_open, board.batches_failed) == (2, 0)
    assert board.alarms == []
    assert _board(other, now).needs_review == 1
    assert _board(other, now).retrying == 0


def test_a_delivery_not_yet_made_into_a_record_counts_as_pending(now):
    shop = make_connection()
    _record(shop, Record.State.RETRYING, created=now - timedelta(minutes=3))
    _delivery(shop, at=now - timedelta(minutes=40), status=Delivery.Status.ACCEPTED)
    _delivery(shop, at=now - timedelta(hours=2, minutes=10), status=Delivery.Status.RECEIVED)

    board = _board(shop, now)

    assert board.oldest_pending_age == "2 h 10 min"
    assert board.red


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=59), "less than a minute"),
        (timedelta(minutes=4, seconds=59), "4 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=2, minutes=10), "2 h 10 min"),
        (timedelta(days=3, hours=2, minutes=5), "3 d 2 h"),
        (timedelta(seconds=-5), "less than a minute"),
    ],
)
def test_durations_read_in_plain_words(delta, words):
    assert duration_words(delta) == words


def test_red_once_the_oldest_pending_passes_the_threshold_and_not_before(now, settings):
    shop = make_connection()
    record = _record(shop, Record.State.RECEIVED, created=now - timedelta(minutes=15))

    assert _board(shop, now).alarms == []

    Record.objects.filter(pk=record.pk).update(created_at=now - timedelta(minutes=15, seconds=1))
    board = _board(shop, now)
    assert board.red
    assert "waited 15 min" in board.alarms[0]

    settings.CONNECTOR_DASHBOARD_PENDING_ALARM_MINUTES = 30
    assert not _board(shop, now).red


def test_red_with_any_failed_journal_batch(now):
    shop = make_connection()
    _batch(shop, JournalBatch.State.SUPERSEDED)
    assert not _board(shop, now).red

    _batch(shop, JournalBatch.State.NEEDS_REVIEW)
    board = _board(shop, now)
    assert board.batches_failed == 1
    assert board.red
    assert "1 journal batch(es) failed" in board.alarms[0]


def test_last_backfill_and_last_run_of_each_fusion_stream_with_outcome(now):
    shop = make_connection()
    audit_record(action="commerce.backfill", actor="system:backfill", connection=shop, target=shop, message="first")
    audit_record(
        action="commerce.backfill",
        actor="system:backfill",
        connection=shop,
        target=shop,
        outcome=AuditEvent.Outcome.FAILURE,
        message="Backfill stopped: Commerce answered 503",
    )
    SyncStream.objects.get_or_create(connection=shop, stream=Stream.CUSTOMERS)
    SyncStream.objects.get_or_create(connection=shop, stream=Stream.ITEMS)
    SyncRun.objects.create(connection=shop, stream=Stream.CUSTOMERS, status="done", started_at=now - timedelta(hours=1))
    SyncRun.objects.create(
        connection=shop, stream=Stream.CUSTOMERS, status="failed", started_at=now - timedelta(minutes=5), error="401"
    )

    runs = {run.name: run for run in _board(shop, now).runs}

    assert runs["Commerce backfill"].outcome == "Failed"
    assert "503" in runs["Commerce backfill"].detail
    assert (runs["Fusion sync: Customers"].outcome, runs["Fusion sync: Customers"].ok) == ("Failed", False)
    assert runs["Fusion sync: Customers"].started_at == now - timedelta(minutes=5)
    assert runs["Fusion sync: Items"].started_at is None


def test_a_check_that_found_nothing_shows_beside_the_last_run_and_clears_an_older_failure(client, now):
    shop = make_connection()
    cache.clear()
    SyncStream.objects.get_or_create(connection=shop, stream=Stream.CUSTOMERS)
    SyncStream.objects.get_or_create(connection=shop, stream=Stream.ITEMS)
    SyncRun.objects.create(
        connection=shop, stream=Stream.CUSTOMERS, status="failed", started_at=now - timedelta(hours=1), error="503"
    )
    SyncRun.objects.create(connection=shop, stream=Stream.ITEMS, status="done", started_at=now - timedelta(minutes=5))
    cache.set(last_checked_key(shop.pk, Stream.CUSTOMERS), {"at": now - timedelta(minutes=2)})
    cache.set(last_checked_key(shop.pk, Stream.ITEMS), {"at": now - timedelta(minutes=10)})  # before the run
    backfill_run(connection=shop, client=FakeCommerce(), now=now - timedelta(minutes=20))  # sets the watermark
    backfill_run(connection=shop, client=FakeCommerce(), now=now - timedelta(minutes=15))  # finds nothing
    assert backfill_checked(shop.pk) is not None

    runs = {run.name: run for run in _board(shop, now).runs}

    customers = runs["Fusion sync: Customers"]
    assert (customers.outcome, customers.ok, customers.checked_at) == ("Failed", True, now - timedelta(minutes=2))
    assert runs["Fusion sync: Items"].checked_at is None  # the run shown is the latest
    backfill = runs["Commerce backfill"]
    assert backfill.outcome == "Done" and backfill.checked_at > backfill.started_at
    finance = _login(client, "fiona", GROUP_FINANCE)
    page = finance.get(reverse(INDEX)).content.decode()
    assert page.count('data-dashboard="checked"') == 2


def _links(page: str, name: str) -> list[str]:
    return [unescape(h) for h in re.findall(rf'data-dashboard="{name}" href="([^"]+)"', page)]


def test_finance_user_sees_the_figures_and_the_needs_review_link_lists_that_connection_only(client):
    shop, other = make_connection(name="A shop"), make_connection(name="B shop")
    mine = [_record(shop, Record.State.NEEDS_REVIEW) for _ in range(2)]
    not_parked = _record(shop, Record.State.RETRYING)
    theirs = _record(other, Record.State.NEEDS_REVIEW)
    finance = _login(client, "fiona", GROUP_FINANCE)

    page = finance.get(reverse(INDEX)).content.decode()

    assert f'data-connection="{shop.slug}"' in page
    assert ">2</a>" in page  # the needs-review count of the first card
    link = _links(page, "needs-review")[0]
    listed = finance.get(link).content.decode()
    for record in mine:
        assert reverse("admin:connector_record_change", args=[record.pk]) in listed
    for record in (not_parked, theirs):
        assert reverse("admin:connector_record_change", args=[record.pk]) not in listed
    retrying = finance.get(_links(page, "retrying")[0]).content.decode()
    assert reverse("admin:connector_record_change", args=[not_parked.pk]) in retrying
    assert reverse("admin:connector_record_change", args=[mine[0].pk]) not in retrying


def test_failed_batches_link_lists_the_failed_batches_of_that_connection(client, now):
    shop, other = make_connection(), make_connection()
    failed = _batch(shop, JournalBatch.State.NEEDS_REVIEW)
    done = _batch(shop, JournalBatch.State.SUCCEEDED)
    theirs = _batch(other, JournalBatch.State.NEEDS_REVIEW)
    finance = _login(client, "fiona", GROUP_FINANCE)

    page = finance.get(reverse(INDEX)).content.decode()

    assert "dashboard-red" in page
    assert "journal batch(es) failed" in page
    link = next(h for h in _links(page, "failed-batches") if f"connection__id__exact={shop.pk}&" in h)
    listed = finance.get(link).content.decode()
    assert reverse("admin:fusion_journalbatch_change", args=[failed.pk]) in listed
    for batch in (done, theirs):
        assert reverse("admin:fusion_journalbatch_change", args=[batch.pk]) not in listed


def test_a_staff_user_without_permission_gets_no_figures(client):
    shop = make_connection()
    _record(shop, Record.State.NEEDS_REVIEW)
    nobody = _login(client, "nemo")

    page = nobody.get(reverse(INDEX)).content.decode()

    assert 'data-dashboard="needs-review"' not in page
    assert shop.name not in page


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse(INDEX))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_integration_admin_sees_the_figures_too(client):
    make_connection(name="Visible shop")
    page = _login(client, "ian", GROUP_INTEGRATION_ADMIN).get(reverse(INDEX)).content.decode()
    assert "Visible shop" in page
    assert 'data-dashboard="needs-review"' in page


def _seed(connections, per_state):
    for connection in connections:
        for state in (Record.State.NEEDS_REVIEW, Record.State.RETRYING, Record.State.RECEIVED, Record.State.POSTED):
            for _ in range(per_state):
                _record(connection, state, posted=timezone.now() if state == Record.State.POSTED else None)
        _delivery(connection, at=timezone.now())
        _batch(connection, JournalBatch.State.NEEDS_REVIEW)
        SyncStream.objects.get_or_create(connection=connection, stream=Stream.CUSTOMERS)
        SyncRun.objects.create(connection=connection, stream=Stream.CUSTOMERS, status="done")


def test_the_number_of_queries_does_not_grow_with_records_or_connections(client, django_assert_max_num_queries):
    finance = _login(client, "fiona", GROUP_FINANCE)
    _seed([make_connection()], per_state=1)
    with CaptureQueriesContext(db_connection) as few:
        assert finance.get(reverse(INDEX)).status_code == 200

    _seed([make_connection() for _ in range(4)], per_state=8)
    with CaptureQueriesContext(db_connection) as many:
        page = finance.get(reverse(INDEX)).content.decode()

    assert page.count('data-dashboard="needs-review"') == 5
    assert len(many) == len(few)
    with django_assert_max_num_queries(8):
        boards = dashboard()
    assert sum(b.needs_review for b in boards) == 1 + 4 * 8


def _reconciliation(connection, status, *, finished, differences=0, error=""):
    day = timezone.localdate()
    run = ReconciliationRun.objects.create(
        connection=connection,
        date_from=day - timedelta(days=1),
        date_to=day - timedelta(days=1),
        status=status,
        difference_count=differences,
        error=error,
    )
    ReconciliationRun.objects.filter(pk=run.pk).update(finished_at=finished)
    return run


def test_the_newest_finished_reconciliation_shows_and_its_differences_turn_the_card_red(client, now):
    shop, quiet = make_connection(name="A shop"), make_connection(name="B shop")
    _reconciliation(shop, ReconciliationRun.Status.OK, finished=now - timedelta(days=1))
    newest = _reconciliation(
        shop, ReconciliationRun.Status.DIFFERENCES, finished=now - timedelta(hours=2), differences=3
    )
    ReconciliationRun.objects.create(connection=shop, date_from=now.date(), date_to=now.date())  # still running
    _reconciliation(quiet, ReconciliationRun.Status.OK, finished=now - timedelta(hours=1))

    board = _board(shop, now)
    assert board.reconciliation == newest
    assert board.red
    assert "found 3 difference(s)" in board.alarms[0]
    assert not _board(quiet, now).red

    page = _login(client, "fiona", GROUP_FINANCE).get(reverse(INDEX)).content.decode()
    assert reverse("admin:sync_reconciliationrun_change", args=[newest.pk]) in page
    assert "3 differences" in page


def test_a_failed_reconciliation_says_why_on_the_card(now):
    shop = make_connection()
    _reconciliation(shop, ReconciliationRun.Status.FAILED, finished=now, error="Fusion refused the credentials")
    board = _board(shop, now)
    assert board.red
    assert "failed: Fusion refused the credentials" in board.alarms[0]
