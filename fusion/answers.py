"""Fusion's answers that the code branches on, parsed at the client's edge into small dataclasses: the rest of
the code never digs in Fusion's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import PermanentError


@dataclass(frozen=True)
class ReceivablesDocument:
    """A Receivables invoice or credit memo as a look-up or a create returns it."""

    transaction_id: str
    transaction_number: str
    transaction_source: str = ""
    business_unit: str = ""
    cross_reference: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReceivablesDocument:
        transaction_id = row.get("CustomerTransactionId")
        if transaction_id in (None, ""):
            raise PermanentError("Fusion answered a Receivables document without its CustomerTransactionId")
        return cls(
            transaction_id=str(transaction_id),
            transaction_number=str(row.get("TransactionNumber") or ""),
            transaction_source=str(row.get("TransactionSource") or ""),
            business_unit=str(row.get("BusinessUnit") or ""),
            cross_reference=str(row.get("CrossReference") or ""),
        )


@dataclass(frozen=True)
class ImportJob:
    """The ESS request an `importBulkData` call started (Fusion spells the field ReqstId)."""

    request_id: str

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> ImportJob:
        return cls(request_id=str(answer.get("ReqstId") or answer.get("ReqstID") or ""))


@dataclass(frozen=True)
class EssJob:
    """Where an ESS request stands (the `ESSJobStatusRF` finder of erpintegrations). `status` is upper case;
    empty when Fusion does not know the request (yet)."""

    request_id: str
    status: str
    message: str = ""

    @classmethod
    def from_answer(cls, request_id: str, answer: dict[str, Any]) -> EssJob:
        items = answer.get("items") or []
        first = items[0] if items and isinstance(items[0], dict) else {}
        return cls(
            request_id=request_id,
            status=str(first.get("RequestStatus") or "").upper(),
            message=str(first.get("Message") or first.get("StatusMessage") or ""),
        )


def _children(value: Any) -> list[dict[str, Any]]:
    """An expanded child collection: a list, or (REST framework version 3 and later) {"items": [...], ...}."""
    if isinstance(value, dict):
        value = value.get("items")
    return [row for row in value or [] if isinstance(row, dict)] if isinstance(value, list) else []


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except (InvalidOperation, ValueError):
        raise PermanentError(f"Fusion answered a tax amount that is not a number: {str(value)[:40]!r}") from None


@dataclass(frozen=True)
class DocumentTax:
    """The tax on a Receivables document as Fusion holds it (read back after the create): the sum of its lines'
    tax lines, positive for an invoice and a credit memo alike, and how many tax lines there were."""

    transaction_id: str
    tax_total: Decimal
    tax_lines: int

    @classmethod
    def from_answer(cls, transaction_id: str, answer: dict[str, Any], *, lines: str, tax_lines: str) -> DocumentTax:
        amounts = [
            _amount(tax.get("TaxAmount"))
            for line in _children(answer.get(lines))
            for tax in _children(line.get(tax_lines))
        ]
        return cls(transaction_id, abs(sum(amounts, Decimal(0))), len(amounts))


@dataclass(frozen=True)
class Ledger:
    """A ledger as `ledgersLOV` lists it (the currency attribute's name is UNCONFIRMED: fusion.md §11.7)."""

    ledger_id: str
    name: str
    currency: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Ledger:
        return cls(
            ledger_id=str(row.get("LedgerId") or ""),
            name=str(row.get("Name") or ""),
            currency=str(row.get("CurrencyCode") or "").upper(),
        )
