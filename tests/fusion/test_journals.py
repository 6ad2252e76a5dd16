"""Journal batches: gathering, closing, one FBDI submission, ESS follow-up."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests
import responses
from django.core.cache import cache
from django.utils import timezone

from connector.models import Connection, Record
from connector.records import record_accept
from fusion import fbdi, journals
from fusion.models import JournalBatch
from fusion.throttle import paced_client
from tests.factories import make_connection
from tests.posting import order_document

BASE = "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TOKEN_URL, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
        yield mock


@pytest.fixture
def connection(db):
    return make_connection(journal_mode=Connection.JournalMode.SALES_JOURNAL, journal_batch_minutes=15)


def _pending_record(connection, entity_id: str, amount: str) -> Record:
    record = record_accept(connection=connection, document=order_document(entity_id)).record
    Record.objects.filter(pk=record.pk).update(
        state=Record.State.JOURNAL_PENDING, fusion_transaction_id="1", fusion_transaction_number=f"MAG-{entity_id}"
    )
    journal = fbdi.Journal(
        name=f"MAG-{entity_id}",
        description=f"order {entity_id}",
        accounting_date=date(2026, 11, 20),
        currency="USD",
        lines=[
            fbdi.JournalLine("01-000-1290-0000-000", Decimal(amount), None, "clearing"),
            fbdi.JournalLine("01-000-4110-0000-000", None, Decimal(amount), "revenue"),
        ],
    )
    journals.journal_enqueue(record=record, journal=journal)
    return record


def _close_all():
    return journals.batches_close_due(now=timezone.now() + timedelta(minutes=16))


def test_records_share_the_open_batch_until_its_window_closes(connection):
    _pending_record(connection, "1", "10.00")
    _pending_record(connection, "2", "20.00")
    batch = JournalBatch.objects.get()
    assert batch.state == JournalBatch.State.OPEN and batch.line_count == 4
    assert journals.batches_close_due() == []
    assert _close_all() == [batch.pk]
    _pending_record(connection, "3", "5.00")
    assert JournalBatch.objects.count() == 2


def test_submitted_file_is_balanced_and_positional_and_sent_once(connection, rsps):
    a = _pending_record(connection, "1", "10.00")
    b = _pending_record(connection, "2", "20.50")
    _close_all()
    batch = JournalBatch.objects.get()
    post = rsps.add(responses.POST, f"{BASE}/erpintegrations", json={"ReqstId": "4711"}, status=201)

    batch = journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)
    journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)  # a second shipper: no second POST

    assert post.call_count == 1
    assert batch.state == JournalBatch.State.RUNNING and batch.request_id == "4711"
    body = json.loads(post.calls[0].request.body)
    assert body["ParameterList"] == f"#NULL,Commerce,300000046975971,{batch.group_id},N,N,N"
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(body["DocumentContent"])))
    rows = list(csv.reader(io.StringIO(archive.read("GlInterface.csv").decode())))
    assert len(rows) == 4 and all(len(row) == 149 for row in rows)
    assert {row[66] for row in rows} == {str(batch.group_id)}
    assert {row[1] for row in rows} == {"300000046975971"}
    assert {(row[3], row[4]) for row in rows} == {("Commerce", "Sales")}
    assert sum(Decimal(r[38]) for r in rows if r[38]) == sum(Decimal(r[39]) for r in rows if r[39]) == Decimal("30.50")
    assert [row[45] for row in rows] == ["MAG-1 Order", "MAG-1 Order", "MAG-2 Order", "MAG-2 Order"]

    rsps.add(responses.GET, f"{BASE}/erpintegrations", json={"items": [{"RequestStatus": "RUNNING"}]})
    assert journals.batch_poll(batch_id=batch.pk, client_factory=paced_client).state == "running"
    rsps.replace(responses.GET, f"{BASE}/erpintegrations", json={"items": [{"RequestStatus": "SUCCEEDED"}]})
    batch = journals.batch_poll(batch_id=batch.pk, client_factory=paced_client)
    assert batch.state == JournalBatch.State.SUCCEEDED
    assert set(Record.objects.filter(pk__in=[a.pk, b.pk]).values_list("state", flat=True)) == {Record.State.POSTED}


def test_ess_error_parks_the_batch_and_its_records(connection, rsps):
    record = _pending_record(connection, "1", "10.00")
    _close_all()
    batch = JournalBatch.objects.get()
    rsps.add(responses.POST, f"{BASE}/erpintegrations", json={"ReqstId": "99"}, status=201)
    rsps.add(responses.GET, f"{BASE}/erpintegrations", json={"items": [{"RequestStatus": "ERROR"}]})
    journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)
    batch = journals.batch_poll(batch_id=batch.pk, client_factory=paced_client)
    assert batch.state == JournalBatch.State.NEEDS_REVIEW
    assert "ERROR" in batch.last_error and batch.resolution_hint.startswith("Resolution:")
    record.refresh_from_db()
    assert record.state == Record.State.NEEDS_REVIEW and "Journal batch" in record.last_error


def test_unknown_submit_outcome_parks_instead_of_sending_again(connection, rsps):
    _pending_record(connection, "1", "10.00")
    _close_all()
    batch = JournalBatch.objects.get()
    post = rsps.add(responses.POST, f"{BASE}/erpintegrations", body=requests.exceptions.ReadTimeout("timed out"))
    batch = journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)
    assert batch.state == JournalBatch.State.NEEDS_REVIEW
    journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)
    assert post.call_count == 1


def test_resubmission_uses_a_new_group_and_never_ships_the_old_batch_again(connection, rsps):
    record = _pending_record(connection, "1", "10.00")
    _close_all()
    old = JournalBatch.objects.get()
    rsps.add(responses.POST, f"{BASE}/erpintegrations", json={"ReqstId": "1"}, status=201)
    rsps.add(responses.GET, f"{BASE}/erpintegrations", json={"items": [{"RequestStatus": "ERROR"}]})
    journals.batch_submit(batch_id=old.pk, client_factory=paced_client)
    old = journals.batch_poll(batch_id=old.pk, client_factory=paced_client)

    with pytest.raises(ValueError, match="Say why"):
        journals.batch_resubmit(batch=old, actor="finance", reason=" ")
    new = journals.batch_resubmit(batch=old, actor="finance", reason="period reopened in Fusion")
    old.refresh_from_db()
    assert old.state == JournalBatch.State.SUPERSEDED and new.group_id != old.group_id
    assert journals.batch_submit(batch_id=old.pk, client_factory=paced_client).state == "superseded"
    record.refresh_from_db()
    assert record.state == Record.State.JOURNAL_PENDING and record.journal_entry.batch_id == new.pk


def test_a_submission_cut_short_is_parked_not_sent_again(connection, rsps):
    _pending_record(connection, "1", "10.00")
    _close_all()
    batch = JournalBatch.objects.get()
    JournalBatch.objects.filter(pk=batch.pk).update(
        state=JournalBatch.State.SUBMITTING, submitted_at=timezone.now() - timedelta(minutes=20)
    )
    assert journals.batches_recover_interrupted() == [batch.pk]
    batch.refresh_from_db()
    assert batch.state == JournalBatch.State.NEEDS_REVIEW and "interrupted" in batch.last_error


def test_resubmitted_and_marked_records_have_it_in_their_timeline(connection, rsps):
    from audit.models import AuditEvent

    record = _pending_record(connection, "1", "10.00")
    _close_all()
    batch = JournalBatch.objects.get()
    rsps.add(responses.POST, f"{BASE}/erpintegrations", body=requests.exceptions.ReadTimeout("timed out"))
    batch = journals.batch_submit(batch_id=batch.pk, client_factory=paced_client)
    journals.batch_mark_imported(batch=batch, actor="finance", reason="import ran in Fusion")
    record.refresh_from_db()
    assert record.state == Record.State.POSTED
    assert AuditEvent.objects.filter(action="record.posted", target_id=str(record.pk), actor="finance").exists()
