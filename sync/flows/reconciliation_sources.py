"""Reading the two sides of a reconciliation, page by page, as generators of the little it compares: the
Commerce documents the connection's policy posts, created in a range of local days, and Fusion's invoices and
credit memos dated in it (docs/reference/commerce.md §4.3, fusion.md §11.9)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commerce.client import CommerceClient
from commerce.search import MAX_PAGE_SIZE, SearchCriteria
from connector.models import Connection, Record
from core.errors import PermanentError
from fusion.client import FusionApi
from fusion.invoices import CREDIT_MEMOS, INVOICES
from fusion.query import q_expr

from .reconciliation_match import CREDIT_MEMO, INVOICE, ORDER, CommerceDoc, FusionDoc, fusion_number_for

FUSION_PAGE_SIZE = 500  # Fusion's largest page
COMMERCE_PAGE_SIZE = MAX_PAGE_SIZE
COMMERCE_SEARCH = {ORDER: "orders", INVOICE: "invoices", CREDIT_MEMO: "creditmemos"}
# The currency attribute of each Receivables resource; EnteredAmount is the document total (fusion.md §11.5).
FUSION_CURRENCY = {INVOICES: "InvoiceCurrencyCode", CREDIT_MEMOS: "CreditMemoCurrency"}
FUSION_AMOUNT = "EnteredAmount"


def local_zone(connection: Connection) -> ZoneInfo:
    try:
        return ZoneInfo(connection.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def utc_bounds(connection: Connection, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The first local day's midnight and the midnight after the last local day, in UTC."""
    zone = local_zone(connection)
    start = datetime.combine(date_from, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def commerce_kinds(connection: Connection) -> tuple[str, ...]:
    """What the posting policy posts: orders, or Commerce invoices; credit memos always."""
    billed = INVOICE if connection.invoice_event == Connection.InvoiceEvent.INVOICE else ORDER
    return (billed, CREDIT_MEMO)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise PermanentError(f"{what} is not an amount: {str(value)[:40]!r}") from None


def commerce_doc(kind: str, entity: Mapping[str, Any], zone: ZoneInfo) -> CommerceDoc:
    """The little reconciliation needs of one Commerce search item."""
    number = str(entity.get("increment_id") or entity.get("entity_id") or "")
    created = str(entity.get("created_at") or "")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"Commerce {kind} {number} has no readable created_at ({created[:40]!r})") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # Commerce answers UTC without a zone
    currency = str(entity.get("order_currency_code") or entity.get("base_currency_code") or "").upper()
    total = _decimal(entity.get("grand_total"), f"The grand total of Commerce {kind} {number}")
    return CommerceDoc(kind, number, moment.astimezone(zone).date(), currency, -total if kind == CREDIT_MEMO else total)


def commerce_documents(
    client: CommerceClient, connection: Connection, date_from: date, date_to: date, *, page_size: int | None = None
) -> Iterator[CommerceDoc]:
    """Every document the policy posts, created in the range (UTC bounds of the local days), page by page:
    oldest first, by created_at then entity_id, which a past range never reorders."""
    start, end = utc_bounds(connection, date_from, date_to)
    zone = local_zone(connection)
    for kind in commerce_kinds(connection):
        criteria = (
            SearchCriteria(page_size=page_size or COMMERCE_PAGE_SIZE)
            .where("created_at", start, "gteq")
            .where("created_at", end, "lt")
            .order_by("created_at")
            .order_by("entity_id")
        )
        for entity in client.iter_search(COMMERCE_SEARCH[kind], criteria):
            yield commerce_doc(kind, entity, zone)


def fusion_doc(resource: str, row: Mapping[str, Any]) -> FusionDoc:
    number = str(row.get("TransactionNumber") or "")
    amount = row.get(FUSION_AMOUNT)
    if amount in (None, ""):
        raise PermanentError(f"Fusion answered {resource} {number} without {FUSION_AMOUNT}")
    try:
        day = date.fromisoformat(str(row.get("TransactionDate") or "")[:10])
    except ValueError:
        raise PermanentError(f"Fusion answered {resource} {number} without a TransactionDate") from None
    currency = str(row.get(FUSION_CURRENCY[resource]) or "").upper()
    return FusionDoc(resource, number, day, currency, _decimal(amount, f"{FUSION_AMOUNT} of {number}"))


def fusion_documents(
    client: FusionApi,
    connection: Connection,
    date_from: date,
    date_to: date,
    *,
    page_size: int | None = None,
    also_numbers: Iterable[str] = (),
) -> Iterator[FusionDoc]:
    """Fusion's invoices and credit memos dated in the range whose number carries the connection's prefix (in any
    transaction source and business unit: a duplicate may sit in another), by CustomerTransactionId; then each of
    `also_numbers` (numbers Fusion gave documents the connector posted, without the prefix) looked up on its own."""
    dates: list[tuple[str, str, Any]] = [("TransactionDate", ">=", date_from), ("TransactionDate", "<=", date_to)]
    prefix = connection.transaction_number_prefix
    for resource in (INVOICES, CREDIT_MEMOS):
        clauses = [*dates, ("TransactionNumber", "like", f"{prefix}%")] if prefix else dates
        yield from _fusion_rows(client, resource, clauses, page_size)
    for number in sorted(set(also_numbers)):
        for resource in (INVOICES, CREDIT_MEMOS):
            for doc in _fusion_rows(client, resource, [*dates, ("TransactionNumber", "=", number)], page_size):
                if doc.number == number:  # Fusion's q compares loosely (fusion.client.find_receivables)
                    yield doc


def _fusion_rows(
    client: FusionApi, resource: str, clauses: list[tuple[str, str, Any]], page_size: int | None
) -> Iterator[FusionDoc]:
    fields = f"CustomerTransactionId,TransactionNumber,TransactionDate,{FUSION_CURRENCY[resource]},{FUSION_AMOUNT}"
    rows = client.iter_items(
        resource,
        q=q_expr(*clauses),
        order_by="CustomerTransactionId",
        fields=fields,
        page_size=page_size or FUSION_PAGE_SIZE,
    )
    for row in rows:
        yield fusion_doc(resource, row)


def fusion_aliases(connection: Connection, date_from: date, date_to: date) -> dict[str, str]:
    """Fusion numbers the connector posted a document under other than the one it is expected under (a source
    that numbers documents itself, identities from before a mappings change): Fusion number -> expected number.
    Only those exceptions are held, read from the records in the range (a day's margin for the time zone)."""
    start, end = utc_bounds(connection, date_from, date_to)
    prefix = connection.transaction_number_prefix
    aliases: dict[str, str] = {}
    rows = (
        Record.objects.filter(
            connection=connection,
            document_date__gte=start - timedelta(days=1),
            document_date__lt=end + timedelta(days=1),
        )
        .exclude(fusion_transaction_number="", posting_identities=[])
        .values_list("kind", "commerce_number", "fusion_transaction_number", "posting_identities")
    )
    for kind, number, fusion_number, identities in rows.iterator(chunk_size=2000):
        expected = fusion_number_for(kind, number, prefix)
        for posted in {fusion_number, *(i.get("number", "") for i in identities or [])}:
            if posted and posted != expected:
                aliases[posted] = expected
    return aliases
