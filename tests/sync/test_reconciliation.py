"""Reconciliation against the bundled mock Fusion and mock Commerce (in threads on loopback): Commerce documents
the connection posts against Fusion's invoices and credit memos, created through Fusion's own POST so that its
EnteredAmount is Fusion's arithmetic, not the test's."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from connector.models import Connection, Record
from fusion.client import FusionClient
from fusion.invoices import CREDIT_MEMOS, INVOICES
from sync.flows import reconciliation_sources
from sync.flows.reconciliation import latest_reconciliation, reconciliation_run
from sync.models import ReconciliationDifference, ReconciliationRun
from tests import mockservers

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock

NOV_3 = date(2026, 11, 3)
Kind = ReconciliationDifference.Kind


@pytest.fixture
def connection(db, allow_local_endpoints, token_cache, fusion_mock, commerce_mock):
    connection = mockservers.mock_connection(fusion_mock, commerce_mock)
    cache.clear()
    return connection


class Sides:
    """Puts documents on both sides: Commerce through the mock's document store, Fusion through its REST POST."""

    def __init__(self, connection: Connection, commerce_mock) -> None:
        self.connection = connection
        self.commerce = commerce_mock
        self.fusion = FusionClient.for_connection(connection)

    def order(self, number: str, total: str, created: str, currency: str = "USD") -> None:
        self.commerce.add_document(
            "orders",
            {
                "entity_id": int(number),
                "increment_id": number,
                "created_at": created,
                "grand_total": total,
                "order_currency_code": currency,
            },
        )

    def creditmemo(self, number: str, total: str, created: str, currency: str = "USD") -> None:
        self.commerce.add_document(
            "creditmemos",
            {
                "entity_id": int(number),
                "increment_id": number,
                "created_at": created,
                "grand_total": total,
                "order_currency_code": currency,
            },
        )

    def invoice(self, number: str, total: str, day: str, currency: str = "USD", source: str = "COMMERCE_WEB") -> None:
        body = {
            "BusinessUnit": "Vision Operations",
            "TransactionSource": source,
            "TransactionType": "Commerce Sale",
            "TransactionNumber": number,
            "TransactionDate": day,
            "BillToCustomerNumber": "1008",
            "InvoiceCurrencyCode": currency,
            "receivablesInvoiceLines": [
                {"LineNumber": 1, "Description": "Sale", "Quantity": 1, "UnitSellingPrice": total}
            ],
        }
        if currency != "USD":
            body["ConversionRateType"] = "Corporate"
        self.fusion.create_receivables(INVOICES, body)

    def credit(self, number: str, total: str, day: str, currency: str = "USD") -> None:
        body = {
            "BusinessUnit": "Vision Operations",
            "TransactionSource": "COMMERCE_WEB",
            "TransactionType": "Credit Memo",
            "TransactionNumber": number,
            "TransactionDate": day,
            "BillToCustomerNumber": "1008",
            "CreditMemoCurrency": currency,
            "receivablesCreditMemoLines": [
                {"LineNumber": 1, "LineDescription": "Refund", "LineQuantityCredit": 1, "UnitSellingPrice": f"-{total}"}
            ],
        }
        if currency != "USD":
            body["ConversionRateType"] = "Corporate"
        self.fusion.create_receivables(CREDIT_MEMOS, body)


@pytest.fixture
def sides(connection, commerce_mock):
    return Sides(connection, commerce_mock)


def _month_with_four_differences(sides: Sides) -> None:
    """Five orders and two credit memos on 3 and 4 November; Fusion lacks order 103, bills order 104 a cent
    short, holds order 105 twice (once in another transaction source) and lacks credit memo 202."""
    for number, total, created in (
        ("000000101", "100.00", "2026-11-03 09:00:00"),
        ("000000102", "250.50", "2026-11-03 12:30:00"),
        ("000000103", "75.25", "2026-11-03 18:00:00"),
        ("000000104", "19.99", "2026-11-04 08:00:00"),
        ("000000105", "42.00", "2026-11-04 10:00:00"),
    ):
        sides.order(number, total, created)
    sides.creditmemo("000000201", "30.00", "2026-11-04 11:00:00")
    sides.creditmemo("000000202", "12.50", "2026-11-04 15:00:00")
    sides.invoice("MAG-000000101", "100.00", "2026-11-03")
    sides.invoice("MAG-000000102", "250.50", "2026-11-03")
    sides.invoice("MAG-000000104", "19.98", "2026-11-04")
    sides.invoice("MAG-000000105", "42.00", "2026-11-04")
    sides.invoice("MAG-000000105", "42.00", "2026-11-04", source="MANUAL")
    sides.credit("MAG-CM-000000201", "30.00", "2026-11-04")


def _differences(run: ReconciliationRun) -> set[tuple]:
    return {
        (d.kind, d.commerce_kind, d.commerce_number, d.fusion_numbers, d.commerce_amount, d.fusion_amount, d.difference)
        for d in run.differences.all()
    }


def test_the_run_finds_exactly_the_injected_differences(connection, sides):
    _month_with_four_differences(sides)
    order_104 = Record.objects.create(
        connection=connection, kind="order", commerce_entity_id="104", commerce_number="000000104", document={}
    )

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=date(2026, 11, 4))

    assert run.status == ReconciliationRun.Status.DIFFERENCES, run.error
    assert _differences(run) == {
        (Kind.MISSING_IN_FUSION, "order", "000000103", "", Decimal("75.25"), None, None),
        (
            Kind.AMOUNT_DIFFERS,
            "order",
            "000000104",
            "MAG-000000104",
            Decimal("19.99"),
            Decimal("19.98"),
            Decimal("-0.01"),
        ),
        (Kind.DUPLICATE_IN_FUSION, "order", "000000105", "MAG-000000105, MAG-000000105", None, Decimal("42.00"), None),
        (Kind.MISSING_IN_FUSION, "creditmemo", "000000202", "", Decimal("-12.50"), None, None),
    }
    assert run.differences.get(kind=Kind.AMOUNT_DIFFERS).record_id == order_104.pk
    assert (run.commerce_count, run.fusion_count, run.matched_count, run.difference_count) == (7, 6, 5, 4)
    assert run.daily == [
        {
            "day": "2026-11-03",
            "currency": "USD",
            "commerce_count": 3,
            "commerce_amount": "425.75",
            "fusion_count": 2,
            "fusion_amount": "350.50",
        },
        {
            "day": "2026-11-04",
            "currency": "USD",
            "commerce_count": 4,
            "commerce_amount": "19.49",
            "fusion_count": 4,
            "fusion_amount": "73.98",
        },
    ]
    latest = latest_reconciliation(connection)
    assert latest == run and latest.differences_total == 4


def test_the_command_exits_1_on_differences_and_0_on_a_clean_range(connection, sides, tmp_path):
    _month_with_four_differences(sides)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "reconcile",
            connection.slug,
            "--from",
            "2026-11-03",
            "--to",
            "2026-11-04",
            "--csv",
            str(tmp_path / "d.csv"),
            stdout=out,
        )
    assert exited.value.code == 1
    text = out.getvalue()
    assert "differences 4" in text and "Missing in Fusion: Commerce order 000000103" in text
    assert "USD: Commerce 445.24 USD, Fusion 424.48 USD" in text
    assert (tmp_path / "d.csv").read_text().count("\n") == 5  # header and four differences

    out = io.StringIO()
    call_command("reconcile", connection.slug, "--from", "2026-11-10", "--to", "2026-11-12", stdout=out)
    assert "Everything matches." in out.getvalue()


def test_the_command_exits_0_when_both_sides_agree(connection, sides):
    sides.order("000000101", "100.00", "2026-11-03 09:00:00")
    sides.invoice("MAG-000000101", "100.00", "2026-11-03")
    out = io.StringIO()
    call_command("reconcile", connection.slug, "--from", "2026-11-03", "--to", "2026-11-03", stdout=out)
    assert "Commerce 1 documents, Fusion 1, matched 1, differences 0" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--from", "2026-11-03", "--to", "2026-11-03"], "No connection with the slug 'nope'"),
        (["{slug}", "--from", "2026-11-31", "--to", "2026-11-03"], "--from '2026-11-31' is not a date"),
        (["{slug}", "--from", "2026-11-05", "--to", "2026-11-03"], "starts (2026-11-05) after it ends"),
    ],
)
def test_the_command_refuses_a_bad_slug_or_date(connection, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("reconcile", *[a.format(slug=connection.slug) for a in args], stdout=io.StringIO())


def test_both_sides_are_read_in_several_pages(connection, sides, commerce_mock, fusion_mock, monkeypatch):
    monkeypatch.setattr(reconciliation_sources, "COMMERCE_PAGE_SIZE", 2)
    monkeypatch.setattr(reconciliation_sources, "FUSION_PAGE_SIZE", 2)
    for n in range(1, 8):
        sides.order(f"{n:09d}", f"{n}.10", f"2026-11-03 0{n}:00:00")
        if n != 5:
            sides.invoice(f"MAG-{n:09d}", f"{n}.10", "2026-11-03")
    sides.invoice("MAG-000000099", "9.99", "2026-11-03")
    before = fusion_mock.state()["requests"]

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert (run.commerce_count, run.fusion_count, run.matched_count) == (7, 7, 6)
    assert _differences(run) == {
        (Kind.MISSING_IN_FUSION, "order", "000000005", "", Decimal("5.10"), None, None),
        (Kind.MISSING_IN_COMMERCE, "", "", "MAG-000000099", None, Decimal("9.99"), None),
    }
    assert fusion_mock.state()["requests"] - before >= 4 + 1  # four pages of invoices, one of credit memos
    searches = sum(n for path, n in commerce_mock.state()["requests_by_path"].items() if path.endswith("/V1/orders"))
    assert searches >= 4  # seven orders, two a page


def test_days_are_the_connections_local_days(connection, sides):
    Connection.objects.filter(pk=connection.pk).update(time_zone="America/New_York")
    connection.refresh_from_db()
    sides.order("000000301", "10.00", "2026-11-03 04:30:00")  # 23:30 on 2 November in New York: outside
    sides.order("000000302", "20.00", "2026-11-03 05:30:00")  # 00:30 on 3 November: inside
    sides.order("000000303", "30.00", "2026-11-04 04:59:59")  # 23:59:59 on 3 November: inside
    sides.order("000000304", "40.00", "2026-11-04 05:00:00")  # midnight on 4 November: outside
    sides.invoice("MAG-000000302", "20.00", "2026-11-03")
    sides.invoice("MAG-000000303", "30.00", "2026-11-03")
    sides.invoice("MAG-000000304", "40.00", "2026-11-04")

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert run.status == ReconciliationRun.Status.OK, _differences(run)
    assert (run.commerce_count, run.fusion_count) == (2, 2)
    assert [(r["day"], r["commerce_amount"]) for r in run.daily] == [("2026-11-03", "50.00")]


def test_currencies_are_totalled_apart(connection, sides):
    sides.order("000000401", "10.00", "2026-11-03 09:00:00", currency="USD")
    sides.order("000000402", "20.00", "2026-11-03 10:00:00", currency="EUR")
    sides.order("000000403", "1500", "2026-11-03 11:00:00", currency="JPY")
    sides.invoice("MAG-000000401", "10.00", "2026-11-03")
    sides.invoice("MAG-000000402", "20.00", "2026-11-03", currency="EUR")
    sides.invoice("MAG-000000403", "1500", "2026-11-03", currency="JPY")

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert run.status == ReconciliationRun.Status.OK, _differences(run)
    assert [(r["currency"], r["commerce_amount"], r["fusion_amount"]) for r in run.daily] == [
        ("EUR", "20.00", "20.00"),
        ("JPY", "1500", "1500"),
        ("USD", "10.00", "10.00"),
    ]


def test_invoice_policy_reconciles_commerce_invoices_not_orders(connection, sides, commerce_mock):
    Connection.objects.filter(pk=connection.pk).update(invoice_event=Connection.InvoiceEvent.INVOICE)
    connection.refresh_from_db()
    sides.order("000000501", "80.00", "2026-11-03 09:00:00")  # not posted under this policy
    commerce_mock.add_document(
        "invoices",
        {
            "entity_id": 601,
            "increment_id": "000000601",
            "created_at": "2026-11-03 09:05:00",
            "grand_total": "80.00",
            "order_currency_code": "USD",
        },
    )
    sides.invoice("MAG-000000601", "80.00", "2026-11-03")

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert run.status == ReconciliationRun.Status.OK, _differences(run)
    assert run.commerce_count == 1


def test_a_fusion_error_fails_the_run_with_the_reason(connection, sides):
    sides.order("000000101", "100.00", "2026-11-03 09:00:00")
    Connection.objects.filter(pk=connection.pk).update(fusion_client_secret="wrong-secret")
    connection.refresh_from_db()
    cache.clear()

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert run.status == ReconciliationRun.Status.FAILED
    assert run.error and "Traceback" not in run.error
    assert "wrong-secret" not in run.error
    assert run.finished_at is not None and run.differences.count() == 0
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", connection.slug, "--from", "2026-11-03", "--to", "2026-11-03", stdout=out)
    assert exited.value.code == 1 and "Reconciliation failed:" in out.getvalue()


def test_a_fusion_document_without_an_amount_fails_the_run(connection, sides, fusion_mock):
    sides.order("000000101", "100.00", "2026-11-03 09:00:00")
    sides.invoice("MAG-000000101", "100.00", "2026-11-03")
    for row in fusion_mock.invoices.rows.values():
        row["EnteredAmount"] = None

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert run.status == ReconciliationRun.Status.FAILED
    assert run.error == "Fusion answered receivablesInvoices MAG-000000101 without EnteredAmount"


def test_a_number_fusion_gave_is_found_and_matched_through_the_record(connection, sides):
    """A transaction source that numbers documents itself: the record keeps Fusion's number, which has no prefix;
    the run looks it up and matches it, and a second document under the expected number is a duplicate."""
    sides.order("000000701", "55.00", "2026-11-03 09:00:00")
    sides.order("000000702", "66.00", "2026-11-03 10:00:00")
    for number, fusion_number in (("000000701", "40012"), ("000000702", "40013")):
        Record.objects.create(
            connection=connection,
            kind="order",
            commerce_entity_id=str(int(number)),
            commerce_number=number,
            document={},
            document_date="2026-11-03T09:00:00Z",
            fusion_transaction_number=fusion_number,
        )
    sides.invoice("40012", "55.00", "2026-11-03", source="AUTO_NUMBERED")
    sides.invoice("40013", "66.00", "2026-11-03", source="AUTO_NUMBERED")
    sides.invoice("MAG-000000702", "66.00", "2026-11-03")

    run = reconciliation_run(connection=connection, date_from=NOV_3, date_to=NOV_3)

    assert _differences(run) == {
        (Kind.DUPLICATE_IN_FUSION, "order", "000000702", "MAG-000000702, 40013", None, Decimal("66.00"), None),
    }
    assert (run.commerce_count, run.fusion_count, run.matched_count) == (2, 3, 2)
    assert run.differences.get().record.commerce_number == "000000702"
