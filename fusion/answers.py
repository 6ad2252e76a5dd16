"""Fusion's answers that the code branches on, parsed at the client's edge into small dataclasses: the rest of
the code never digs in Fusion's JSON."""

from __future__ import annotations

from dataclasses import dataclass
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
