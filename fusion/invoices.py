"""Receivables documents in Fusion: the AR invoice (receivablesInvoices) and the on-account credit memo
(receivablesCreditMemos) built from a posting plan. Fusion has no idempotency key, so every create is
preceded by a look-up on TransactionNumber, source and business unit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connector.documents import quantize
from core.errors import PermanentError, ValidationRejectedError
from mappings.rules import PostingPlan

from .client import FusionApi

INVOICES = "receivablesInvoices"
CREDIT_MEMOS = "receivablesCreditMemos"


@dataclass(frozen=True)
class PostedDocument:
    transaction_id: str
    transaction_number: str
    adopted: bool  # found in Fusion by the look-up rather than created now


def _num(value: Decimal) -> float | int:
    """JSON numbers for Fusion. Decimals are quantised to the currency before they get here, so the float
    conversion of such a value is exact to the cent when serialised."""
    return int(value) if value == value.to_integral_value() else float(value)


def _conversion_fields(plan: PostingPlan) -> dict[str, Any]:
    """The conversion fields for a foreign-currency document (none when it is in the ledger currency)."""
    conversion = plan.header.conversion
    if conversion is None:
        return {}
    fields: dict[str, Any] = {
        "ConversionRateType": conversion.rate_type,
        "ConversionDate": conversion.conversion_date.isoformat(),
    }
    if conversion.rate is not None:
        fields["ConversionRate"] = _num(conversion.rate)
    return fields


def resource_for(plan: PostingPlan) -> str:
    return CREDIT_MEMOS if plan.is_credit_memo else INVOICES


def _identity_fields(plan: PostingPlan) -> dict[str, Any]:
    """The header fields every Receivables document starts with: who books it, as what, under which number."""
    header = plan.header
    return {
        "BusinessUnit": header.business_unit,
        "TransactionSource": header.transaction_source,
        "TransactionType": header.transaction_type,
        "TransactionNumber": header.transaction_number,
        "TransactionDate": header.transaction_date.isoformat(),
        "AccountingDate": header.accounting_date.isoformat(),
    }


def invoice_payload(plan: PostingPlan, *, complete: bool) -> dict[str, Any]:
    header = plan.header
    body: dict[str, Any] = {
        **_identity_fields(plan),
        "BillToCustomerNumber": header.bill_to_customer_number,
        "PaymentTerms": header.payment_terms,
        "InvoiceCurrencyCode": header.currency,
        "CrossReference": header.cross_reference,
        "Comments": header.comments,
    }
    if header.bill_to_site:
        body["BillToSite"] = header.bill_to_site
    if header.purchase_order:
        body["PurchaseOrder"] = header.purchase_order
    body.update(_conversion_fields(plan))
    lines = []
    for line in plan.lines:
        item: dict[str, Any] = {
            "LineNumber": line.line_number,
            "Description": line.description,
            "Quantity": _num(line.quantity),
            "UnitSellingPrice": _num(line.unit_selling_price),
        }
        if line.memo_line:
            item["MemoLine"] = line.memo_line
        if line.tax_amount:
            item["receivablesInvoiceLineTaxLines"] = [{"TaxAmount": _num(line.tax_amount)}]
        lines.append(item)
    body["receivablesInvoiceLines"] = lines
    if plan.distributions_mode == "manual" and plan.distributions:
        distributions = []
        for dist in plan.distributions:
            row: dict[str, Any] = {
                "AccountClass": dist.account_class,
                "AccountCombination": dist.combination,
                "Amount": _num(dist.amount),
            }
            if dist.line_number is not None:
                row["InvoiceLineNumber"] = dist.line_number
            distributions.append(row)
        body["receivablesInvoiceDistributions"] = distributions
    if complete:
        body["InvoiceStatus"] = "Complete"
    return body


def _credit_lines(plan: PostingPlan) -> list[dict[str, Any]]:
    """Credit memo lines all credit (negative amounts). A plan line that reduces the refund (a discount booked
    apart, a gift card or store credit) cannot be a line of its own on an on-account credit memo, so it is
    spread over the lines it reduces, pro rata, to the minor unit; those lines are then sent as one unit each."""
    positive = [line for line in plan.lines if line.amount > 0]
    reduction = -sum((line.amount for line in plan.lines if line.amount < 0), Decimal(0))
    if not reduction or not positive:
        return [
            {
                "LineNumber": line.line_number,
                "LineDescription": line.description,
                "LineQuantityCredit": _num(line.quantity),
                "UnitSellingPrice": _num(-line.unit_selling_price),
                **({"MemoLine": line.memo_line} if line.memo_line else {}),
            }
            for line in plan.lines
        ]
    gross = sum((line.amount for line in positive), Decimal(0))
    shares = [quantize(reduction * line.amount / gross, plan.currency) for line in positive]
    shares[-1] += reduction - sum(shares, Decimal(0))  # the rounding remainder, so the total is exact
    return [
        {
            "LineNumber": line.line_number,
            "LineDescription": f"{line.description} (net of {share} in reductions)"[:240],
            "LineQuantityCredit": 1,
            "UnitSellingPrice": _num(-(line.amount - share)),
            **({"MemoLine": line.memo_line} if line.memo_line else {}),
        }
        for line, share in zip(positive, shares, strict=True)
    ]


def credit_memo_payload(plan: PostingPlan) -> dict[str, Any]:
    """An on-account credit memo: amounts negative, naming the credited invoice in the cross-reference and
    comments (Oracle documents on-account credit memos over REST, not applying one to an invoice). It is
    left as Fusion's transaction type makes it: InvoiceStatus is not a documented credit-memo attribute."""
    header = plan.header
    original = header.original_invoice_number
    comments = header.comments
    if original and original not in comments:
        comments = f"{comments} Credits invoice {original}.".strip()
    body: dict[str, Any] = {
        **_identity_fields(plan),
        "CreditMemoCurrency": header.currency,
        "BillToCustomerNumber": header.bill_to_customer_number,
        "CrossReference": cross_reference_of(plan),
        "CreditMemoComments": comments[:240],
        "receivablesCreditMemoLines": _credit_lines(plan),
    }
    if plan.tax_total:
        # Refunded tax as its own credit line: the credit memo must credit what Commerce refunded, tax included.
        body["receivablesCreditMemoLines"].append(
            {
                "LineNumber": max((line.line_number for line in plan.lines), default=0) + 1,
                "LineDescription": "Tax refunded",
                "LineQuantityCredit": 1,
                "UnitSellingPrice": _num(-plan.tax_total),
            }
        )
    if header.bill_to_site:
        body["BillToSite"] = header.bill_to_site
    body.update(_conversion_fields(plan))
    return body


@dataclass(frozen=True)
class Identity:
    """What a document is looked up by in Fusion: it has no idempotency key, so this is ours."""

    resource: str
    number: str
    source: str
    business_unit: str

    def as_json(self) -> dict[str, str]:
        return {"resource": self.resource, "number": self.number, "source": self.source, "bu": self.business_unit}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Identity:
        return cls(data["resource"], data["number"], data["source"], data["bu"])


def identity_of(plan: PostingPlan) -> Identity:
    header = plan.header
    return Identity(resource_for(plan), header.transaction_number, header.transaction_source, header.business_unit)


def cross_reference_of(plan: PostingPlan) -> str:
    """The CrossReference the document is sent with (a credit memo names the invoice it credits)."""
    if plan.is_credit_memo:
        return plan.header.original_invoice_number or plan.header.cross_reference
    return plan.header.cross_reference


def document_find(*, client: FusionApi, identity: Identity, cross_reference: str) -> PostedDocument | None:
    """Look a document up by TransactionNumber, TransactionSource and BusinessUnit. A document found under
    our number but made for something else (another connection or system numbering the same way) is never
    adopted: that would silently leave this sale unposted."""
    found = client.find_receivables(
        identity.resource, number=identity.number, source=identity.source, business_unit=identity.business_unit
    )
    if len(found) > 1:
        raise PermanentError(
            f"Fusion holds {len(found)} documents numbered {identity.number} in source {identity.source}",
            hint="Resolution: check the duplicates in Fusion's Receivables; keep one, then replay or mark ignored.",
        )
    if not found:
        return None
    theirs = found[0].cross_reference
    if theirs and cross_reference and theirs != cross_reference:
        raise PermanentError(
            f"Fusion already has {identity.number} in source {identity.source}, but it was made for {theirs!r}, "
            f"not {cross_reference!r}: another connection or system uses the same numbers",
            hint="Resolution: give this connection its own transaction number prefix or transaction source, "
            "then replay.",
        )
    return PostedDocument(found[0].transaction_id, identity.number, adopted=True)


def payload_total(payload: dict[str, Any]) -> Decimal:
    """What a body would bill, computed back from the body itself (a credit memo's comes out positive)."""
    if "receivablesCreditMemoLines" in payload:
        lines = payload["receivablesCreditMemoLines"]
        return -sum(
            (Decimal(str(line["LineQuantityCredit"])) * Decimal(str(line["UnitSellingPrice"])) for line in lines),
            Decimal(0),
        )
    total = Decimal(0)
    for line in payload.get("receivablesInvoiceLines", []):
        total += Decimal(str(line["Quantity"])) * Decimal(str(line["UnitSellingPrice"]))
        total += sum((Decimal(str(t["TaxAmount"])) for t in line.get("receivablesInvoiceLineTaxLines", [])), Decimal(0))
    return total


def document_post(
    *,
    client: FusionApi,
    plan: PostingPlan,
    complete: bool,
    known: tuple[Identity, ...] = (),
    before_create: Callable[[Identity], None] | None = None,
) -> PostedDocument:
    """Adopt the document if Fusion already has it under any identity it was ever sent with (`known`) or
    would be sent with now; else create it (one POST, never retried here). `before_create(identity)` runs
    right before the POST: the caller records the identity so a later attempt looks it up."""
    current = identity_of(plan)
    cross_reference = cross_reference_of(plan)
    for identity in dict.fromkeys((*known, current)):
        found = document_find(client=client, identity=identity, cross_reference=cross_reference)
        if found is not None:
            return found
    payload = credit_memo_payload(plan) if plan.is_credit_memo else invoice_payload(plan, complete=complete)
    billed = quantize(payload_total(payload), plan.currency)
    if billed != plan.total:
        raise PermanentError(
            f"The {current.resource} body would bill {billed} but the plan totals {plan.total} {plan.currency}",
            hint="Resolution: this is a defect in building the Fusion body; nothing was sent. Report it.",
        )
    if before_create is not None:
        before_create(current)
    try:
        created = client.create_receivables(current.resource, payload)
    except ValidationRejectedError:
        # After a create whose answer was lost, Fusion refuses the same number again: find it and adopt it.
        found = document_find(client=client, identity=current, cross_reference=cross_reference)
        if found is not None:
            return found
        raise
    return PostedDocument(created.transaction_id, created.transaction_number or current.number, adopted=False)
