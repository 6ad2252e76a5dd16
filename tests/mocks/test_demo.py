"""The demo as a new user meets it: seeded against the running mock systems, a stream of signed Commerce documents
through the webhook door, posted to the mock Fusion; the order with a SKU no rule maps waits for review, and
after the rule is added and the record replayed it is posted exactly once. Seeding again changes nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from commerce.deliveries import delivery_record
from commerce.models import Delivery
from connector.models import Connection, Record, WebhookKey
from mappings.models import AccountTemplate, CustomerRule, ProductRule, SegmentLayout, TaxRule
from mappings.services import rule_save
from mocks.demo import (
    FIRST_NUMBER,
    MISSING_SKU,
    SLUG,
    demo_guide,
    demo_outcome,
    demo_seed,
    demo_send,
    demo_settled,
    demo_stream,
)
from sync.flows.reconciliation import reconciliation_run
from sync.flows.sales_documents import record_process
from sync.models import ReconciliationDifference, ReconciliationRun
from sync.replay import record_replay
from tests import mockservers

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local_endpoints", "token_cache")]


class DoorSession:
    """requests.post's signature onto Django's test client: the webhook reaches the real door in-process."""

    def __init__(self) -> None:
        self.client = Client()

    def post(self, url: str, *, data: bytes, headers: dict[str, str], timeout: object) -> SimpleNamespace:
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        meta.pop("HTTP_CONTENT_TYPE", None)
        response = self.client.post(urlsplit(url).path, data=data, content_type="application/json", **meta)
        return SimpleNamespace(status_code=response.status_code, text=response.content.decode())


def _drain() -> None:
    """What the workers do: read every stored delivery, then run every due record until none is left."""
    for delivery_id in Delivery.objects.filter(status=Delivery.Status.RECEIVED).values_list("pk", flat=True):
        delivery_record(delivery_id)
    for _ in range(10):
        due = Record.objects.filter(state__in=Record.ACTIVE_STATES, next_attempt_at__lte=timezone.now())
        ids = list(due.order_by("pk").values_list("pk", flat=True))
        if not ids:
            return
        for record_id in ids:
            record_process(record_id=record_id)


def _by_number(kind: str, number: int) -> Record:
    return Record.objects.get(kind=kind, commerce_number=f"{number:09d}")


@pytest.fixture
def seeded(fusion_mock, commerce_mock):
    return demo_seed(fusion_url=fusion_mock.url, commerce_url=commerce_mock.url)


def test_the_demo_stream_posts_parks_the_unmapped_sku_and_posts_it_once_after_the_rule_and_a_replay(
    seeded, fusion_mock
):
    answers = demo_send(connection=seeded.connection, documents=demo_stream(), session=DoorSession())
    assert [a.status for a in answers] == [200] * 7
    _drain()

    posted_orders = [FIRST_NUMBER, FIRST_NUMBER + 1, FIRST_NUMBER + 2, FIRST_NUMBER + 4]
    for number in posted_orders:
        record = _by_number("order", number)
        assert record.state == Record.State.POSTED, (number, record.last_error)
    parked = _by_number("order", FIRST_NUMBER + 3)
    assert parked.state == Record.State.NEEDS_REVIEW
    assert MISSING_SKU in parked.last_error and "product rule" in parked.resolution_hint.lower()
    assert _by_number("invoice", FIRST_NUMBER).state == Record.State.LINKED
    assert _by_number("creditmemo", FIRST_NUMBER + 1).state == Record.State.POSTED
    state = fusion_mock.state()
    assert state["invoices"] == 4 and state["credit_memos"] == 1, state
    assert state["rejected_creates"] == 0, state

    outcome = demo_outcome(connection=seeded.connection)
    assert demo_settled(outcome) and outcome["needs review"] == ["order 000001004"]
    # Month-end view of the same: the demo placed each document in the mock Commerce before its webhook, so the
    # reconciliation finds exactly the parked order missing in Fusion.
    today = timezone.localdate()
    run = reconciliation_run(connection=seeded.connection, date_from=today - timedelta(days=1), date_to=today)
    assert run.status == ReconciliationRun.Status.DIFFERENCES, run.error
    assert [(d.kind, d.commerce_number) for d in run.differences.all()] == [
        (ReconciliationDifference.Kind.MISSING_IN_FUSION, "000001004")
    ]
    assert f"no product rule matches {MISSING_SKU}" in demo_guide(outcome)

    rule_save(
        rule=ProductRule(
            connection=seeded.connection, match_type="sku", match_value=MISSING_SKU, item_number=MISSING_SKU
        ),
        actor="test",
    )
    record_replay(record=parked, actor="test", reason="product rule added")
    _drain()
    parked.refresh_from_db()
    assert parked.state == Record.State.POSTED, parked.last_error
    assert fusion_mock.state()["invoices"] == 5
    assert "is not parked" in demo_guide(demo_outcome(connection=seeded.connection))
    again = reconciliation_run(connection=seeded.connection, date_from=today - timedelta(days=1), date_to=today)
    assert again.status == ReconciliationRun.Status.OK, list(again.differences.values("kind", "commerce_number"))

    # The same stream again (Commerce repeating itself, or the demo run twice): nothing new in Fusion.
    demo_send(connection=seeded.connection, documents=demo_stream(), session=DoorSession())
    _drain()
    assert Record.objects.count() == 7
    assert fusion_mock.state()["invoices"] == 5 and fusion_mock.state()["credit_memos"] == 1
    numbers = [n for n in Record.objects.values_list("fusion_transaction_number", flat=True) if n]
    assert len(numbers) == len(set(numbers)) == 7 - 1  # the linked invoice shares its order's AR invoice


def _counts() -> dict[str, int]:
    models = (Connection, WebhookKey, SegmentLayout, AccountTemplate, CustomerRule, ProductRule, TaxRule, AuditEvent)
    return {model.__name__: model.objects.count() for model in models}


def test_seeding_twice_changes_nothing(seeded, fusion_mock, commerce_mock):
    assert seeded.created and seeded.changed
    before = _counts()
    key_before = WebhookKey.objects.get().secret
    again = demo_seed(fusion_url=fusion_mock.url, commerce_url=commerce_mock.url)
    assert not again.created and again.changes == []
    assert _counts() == before
    assert WebhookKey.objects.get().secret == key_before
    assert Connection.objects.get().slug == SLUG


def test_seeding_brings_an_edited_demo_back_to_its_values(seeded, fusion_mock, commerce_mock):
    ProductRule.objects.filter(match_value="24-MB01").update(item_number="WRONG")
    again = demo_seed(fusion_url=fusion_mock.url, commerce_url=commerce_mock.url)
    assert again.changes == ["product rules: 0 new, 1 changed"]
    assert ProductRule.objects.get(match_value="24-MB01").item_number == "24-MB01"


def test_the_seed_command_says_when_there_is_nothing_to_do(fusion_mock, commerce_mock):
    urls = ["--fusion-url", fusion_mock.url, "--commerce-url", commerce_mock.url]
    first, second = StringIO(), StringIO()
    call_command("seed_demo", *urls, stdout=first)
    call_command("seed_demo", *urls, stdout=second)
    assert "Demo connection demo created" in first.getvalue()
    assert "product rules: 4 new" in first.getvalue()
    assert second.getvalue().strip() == "Demo connection demo: already seeded, no changes."


def test_the_seed_command_refuses_while_local_endpoints_are_off(settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    with pytest.raises(CommandError, match="set CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 for the bundled mocks"):
        call_command("seed_demo", stdout=StringIO())
    assert not Connection.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_seed_command_sends_the_stream_to_the_running_connector(fusion_mock, commerce_mock, live_server, settings):
    settings.CONNECTOR_PUBLIC_URL = live_server.url
    out = StringIO()
    call_command(
        "seed_demo", "--fusion-url", fusion_mock.url, "--commerce-url", commerce_mock.url, "--send", stdout=out
    )
    sent = [line for line in out.getvalue().splitlines() if line.startswith("  ") and line.endswith(": 200")]
    assert len(sent) == len(demo_stream()) == 7
    assert Delivery.objects.filter(connection__slug=SLUG).count() == 7
