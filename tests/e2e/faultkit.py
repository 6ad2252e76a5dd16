"""What the fault-matrix runs share: signed Commerce deliveries (orders, invoices, credit memos numbered per case),
a sender that records every answer, and the two checks every case ends with: the mock Fusion holds exactly one
AR document per Commerce document, with the Commerce total, and every record is posted (or linked, or parked
with a reason)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from connector.models import Connection, Record
from mocks.fusion import MockFusion
from tests.e2e.processes import wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commerce"
SECRET = "e2e-fault-secret"
DONE_STATES = (Record.State.POSTED, Record.State.LINKED, Record.State.NEEDS_REVIEW, Record.State.IGNORED)


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def order_entity(base: int, n: int) -> str:
    return str(base + n)


def order_body(base: int, n: int) -> bytes:
    payload = _fixture("order_place_after.json")
    order = copy.deepcopy(payload["data"]["order"])
    order.update(entity_id=order_entity(base, n), increment_id=f"{base * 1000 + n:09d}")
    for item in order["items"]:
        item["order_id"] = order["entity_id"]
    payload["data"] = {"order": order}
    return json.dumps(payload).encode()


def invoice_body(base: int, n: int) -> bytes:
    payload = _fixture("invoice_save_after.json")
    invoice = copy.deepcopy(payload["data"]["invoice"])
    invoice.update(
        entity_id=str(base + 500 + n), increment_id=f"{base * 1000 + 500 + n:09d}", order_id=order_entity(base, n)
    )
    payload["data"] = {"invoice": invoice}
    return json.dumps(payload).encode()


def credit_memo_body(base: int, n: int) -> bytes:
    payload = _fixture("creditmemo_save_after.json")
    memo = copy.deepcopy(payload["data"]["creditmemo"])
    memo.update(
        entity_id=str(base + 800 + n), increment_id=f"{base * 1000 + 800 + n:09d}", order_id=order_entity(base, n)
    )
    for item in memo["items"]:
        item["parent_id"] = memo["entity_id"]
    payload["data"] = {"creditmemo": memo}
    return json.dumps(payload).encode()


def deliver(url: str, body: bytes, *, timeout: float = 30) -> int | None:
    """POST one signed delivery as Commerce would; the HTTP status, or None when no answer came back."""
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "X-Commerce-Signature": signature},
            timeout=timeout,
        )
    except requests.RequestException:
        return None
    return response.status_code


def webhook_url(base: str, connection: Connection) -> str:
    return f"{base}/webhooks/commerce/{connection.slug}/"


def states(connection: Connection) -> Counter[str]:
    return Counter(Record.objects.filter(connection=connection).values_list("state", flat=True))


def wait_settled(connection: Connection, expected: int, *, timeout: float, procs=None) -> None:
    """Wait until the connection has `expected` records and none of them has work left."""

    def settled() -> bool:
        records = Record.objects.filter(connection=connection)
        return records.count() == expected and not records.exclude(state__in=DONE_STATES).exists()

    try:
        wait_for(settled, timeout=timeout, interval=1, procs=procs, what=f"{expected} records to settle")
    except AssertionError as exc:
        sample = {
            state: list(
                Record.objects.filter(connection=connection, state=state).values_list("commerce_number", "last_error")[
                    :3
                ]
            )
            for state in states(connection)
        }
        raise AssertionError(f"{exc}; states {dict(states(connection))}: {sample}") from None


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def fusion_total(row: dict[str, Any], *, credit: bool) -> Decimal:
    """What a stored Fusion document bills: its lines (quantity x unit price), their freight and tax lines, and the
    header freight; a credit memo's comes out positive, like the Commerce credit memo's grand total."""
    lines = row.get("receivablesCreditMemoLines" if credit else "receivablesInvoiceLines") or []
    tax_key = "receivablesCreditMemoLineTaxLines" if credit else "receivablesInvoiceLineTaxLines"
    total = _dec(row.get("FreightCreditAmount" if credit else "FreightAmount"))
    for line in lines:
        total += _dec(line.get("LineQuantityCredit" if credit else "Quantity")) * _dec(line.get("UnitSellingPrice"))
        total += _dec(line.get("AllocatedFreightAmount"))
        total += sum((_dec(tax.get("TaxAmount")) for tax in line.get(tax_key) or []), Decimal(0))
    return (-total if credit else total).quantize(Decimal("0.01"))


RECORD_FIELDS = (
    "kind",
    "state",
    "commerce_number",
    "fusion_transaction_number",
    "fusion_transaction_id",
    "grand_total",
)


def assert_exactly_once(
    mock: MockFusion, connection: Connection, *, orders: int, credit_memos: int = 0, invoices_linked: int = 0
) -> None:
    rows = list(Record.objects.filter(connection=connection).values(*RECORD_FIELDS))
    check_exactly_once(mock, rows, orders=orders, credit_memos=credit_memos, invoices_linked=invoices_linked)


def check_exactly_once(
    mock: MockFusion, records: list[dict[str, Any]], *, orders: int, credit_memos: int = 0, invoices_linked: int = 0
) -> None:
    """Zero lost, zero doubled: one Fusion document per Commerce document that bills (each order, each credit
    memo), under the record's number, with the Commerce total; every record posted or linked, none parked; and
    no create was ever sent for a number Fusion already had. `records` are rows of RECORD_FIELDS."""
    by_state = Counter(r["state"] for r in records)
    expected_states = Counter({Record.State.POSTED: orders + credit_memos, Record.State.LINKED: invoices_linked})
    assert by_state == +expected_states, dict(by_state)
    with mock._lock:
        fusion_invoices = [copy.deepcopy(r) for r in mock.invoices.rows.values()]
        fusion_memos = [copy.deepcopy(r) for r in mock.credit_memos.rows.values()]
    for kind, rows, expected, credit in (
        (Record.Kind.ORDER, fusion_invoices, orders, False),
        (Record.Kind.CREDIT_MEMO, fusion_memos, credit_memos, True),
    ):
        numbers = Counter(r["TransactionNumber"] for r in rows)
        doubled = {n: c for n, c in numbers.items() if c > 1}
        assert not doubled, f"Fusion holds these {kind} numbers more than once: {doubled}"
        assert len(rows) == expected, f"{len(rows)} Fusion documents for {expected} Commerce {kind} documents"
        by_number = {r["TransactionNumber"]: r for r in rows}
        for record in (r for r in records if r["kind"] == kind):
            row = by_number.get(record["fusion_transaction_number"])
            assert row is not None, f"{kind} {record['commerce_number']} has no Fusion document"
            assert str(row["CustomerTransactionId"]) == record["fusion_transaction_id"]
            billed = fusion_total(row, credit=credit)
            assert billed == record["grand_total"], (
                f"{kind} {record['commerce_number']}: Fusion bills {billed}, Commerce {record['grand_total']}"
            )
    assert mock.state()["rejected_creates"] == 0, "a create was sent for a number Fusion already had"
