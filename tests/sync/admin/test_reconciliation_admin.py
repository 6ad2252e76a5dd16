"""The reconciliation admin: the runs list, a run's page (table by day and currency, differences linked to their
records), the CSV downloads, and the form that starts a run in the background."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from connector.groups import GROUP_FINANCE
from connector.models import Record
from sync.models import ReconciliationDifference, ReconciliationRun
from tests.factories import make_connection

pytestmark = pytest.mark.django_db
Kind = ReconciliationDifference.Kind


@pytest.fixture
def finance(client):
    user = User.objects.create_user("fiona", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_FINANCE))
    client.force_login(user)
    return client


@pytest.fixture
def run(db):
    connection = make_connection()
    record = Record.objects.create(
        connection=connection, kind="order", commerce_entity_id="7", commerce_number="000000007", document={}
    )
    run = ReconciliationRun.objects.create(
        connection=connection,
        date_from=date(2026, 11, 3),
        date_to=date(2026, 11, 4),
        status=ReconciliationRun.Status.DIFFERENCES,
        commerce_count=2,
        fusion_count=2,
        matched_count=1,
        difference_count=2,
        daily=[
            {
                "day": "2026-11-03",
                "currency": "USD",
                "commerce_count": 2,
                "commerce_amount": "1234.50",
                "fusion_count": 2,
                "fusion_amount": "1234.49",
            }
        ],
    )
    run.finished_at = run.started_at
    run.save()
    ReconciliationDifference.objects.create(
        run=run,
        kind=Kind.AMOUNT_DIFFERS,
        day=date(2026, 11, 3),
        commerce_kind="order",
        commerce_number="000000007",
        fusion_numbers="MAG-000000007",
        currency="USD",
        commerce_amount=Decimal("34.50"),
        fusion_amount=Decimal("34.49"),
        difference=Decimal("-0.01"),
        record=record,
    )
    ReconciliationDifference.objects.create(
        run=run,
        kind=Kind.MISSING_IN_COMMERCE,
        day=date(2026, 11, 3),
        fusion_numbers="=HYPERLINK(1)",
        currency="USD",
        fusion_amount=Decimal("5"),
    )
    return run


def test_the_runs_list_shows_status_range_and_differences(finance, run):
    page = finance.get(reverse("admin:sync_reconciliationrun_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Differences found" in text and str(run.connection) in text
    assert reverse("admin:sync_reconciliationrun_reconcile") in text


def test_a_run_page_shows_the_daily_table_and_links_differences_to_records(finance, run):
    page = finance.get(reverse("admin:sync_reconciliationrun_change", args=[run.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "1,234.50 USD" in text and "1,234.49 USD" in text
    record = run.differences.get(kind=Kind.AMOUNT_DIFFERS).record
    assert reverse("admin:connector_record_change", args=[record.pk]) in text
    assert "-0.01 USD" in text and "Missing in Commerce" in text
    assert reverse("admin:sync_reconciliationrun_csv", args=[run.pk]) in text


def test_the_differences_and_the_daily_table_download_as_csv(finance, run):
    answer = finance.get(reverse("admin:sync_reconciliationrun_csv", args=[run.pk]))
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert "attachment" in answer["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert [(r["kind"], r["commerce_number"], r["difference"]) for r in rows] == [
        ("amount_differs", "000000007", "-0.01"),
        ("missing_in_commerce", "", ""),
    ]
    assert rows[1]["fusion_numbers"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert rows[1]["fusion_amount"] == "5.00"
    daily = finance.get(reverse("admin:sync_reconciliationrun_daily_csv", args=[run.pk]))
    assert list(csv.DictReader(io.StringIO(daily.content.decode())))[0]["fusion_amount"] == "1234.49"


def test_the_reconcile_form_starts_a_run_in_the_background(finance, run, django_capture_on_commit_callbacks):
    with (
        mock.patch("sync.admin.reconciliation.reconcile.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        answer = finance.post(
            reverse("admin:sync_reconciliationrun_reconcile"),
            {"connection": run.connection_id, "date_from": "2026-11-01", "date_to": "2026-11-30"},
        )
    started = ReconciliationRun.objects.exclude(pk=run.pk).get()
    assert answer.status_code == 302 and answer["Location"].endswith(f"/{started.pk}/change/")
    assert started.status == ReconciliationRun.Status.RUNNING and started.requested_by == "fiona"
    send.assert_called_once_with(args=[started.pk], retry=False)


def test_the_reconcile_form_refuses_a_backwards_range(finance, run):
    with mock.patch("sync.admin.reconciliation.reconcile.apply_async") as send:
        answer = finance.post(
            reverse("admin:sync_reconciliationrun_reconcile"),
            {"connection": run.connection_id, "date_from": "2026-11-30", "date_to": "2026-11-01"},
        )
    assert answer.status_code == 200 and "after it ends" in answer.content.decode()
    assert ReconciliationRun.objects.count() == 1 and not send.called


def test_a_user_without_access_cannot_download(client, run):
    user = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:sync_reconciliationrun_csv", args=[run.pk])).status_code == 403
