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
from mappings.rules import TAX_MANUAL, PlanLine, PlanTaxLine, PostingPlan, spread

from .client import FusionApi

INVOICES = "receivablesInvoices"
CREDIT_MEMOS = "receivablesCreditMemos"

# How a body carries freight and tax, as Oracle's examples show it (docs/reference/fusion.md §11), in one place so a
# pod test can change it here. Allocated freight: AllocatedFreightAmount on the invoice line (24c example). Header
# freight: FreightAmount on the invoice header with a Freight distribution without a line number: UNCONFIRMED
# (Oracle lists the shape, 25c, but the page was not found; FreightAmount is in the GET response, 23d). A credit
# memo's freight: FreightCreditAmount on its header (23d example), the only freight shape documented for them.
LINE_FREIGHT = "AllocatedFreightAmount"
HEADER_FREIGHT = "FreightAmount"
CREDIT_MEMO_FREIGHT = "FreightCreditAmount"
TAX_LINES = {INVOICES: "receivablesInvoiceLineTaxLines", CREDIT_MEMOS: "receivablesCreditMemoLineTaxLines"}
# Fusion tax mode: Fusion computes the tax, so the body cannot say the tax or the receivable (which includes it);
# the Revenue and Freight distributions go, AutoAccounting does the rest. UNCONFIRMED that Fusion accepts
# distributions for only some classes; without manual distributions nothing changes.
FUSION_TAX_LEAVES_OUT = ("Tax", "Receivable")


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


def _tax_line(tax: PlanTaxLine, sign: int) -> dict[str, Any]:
    """One manual tax line as Oracle's examples send it: regime, rate and amount; tax, status and jurisdiction
    only when the tax rule names them."""
    line: dict[str, Any] = {
        "TaxRegimeCode": tax.tax_regime_code,
        "TaxRateCode": tax.tax_rate_code,
        "TaxAmount": _num(sign * tax.amount),
    }
    for name, value in (
        ("Tax", tax.tax),
        ("TaxStatusCode", tax.tax_status_code),
        ("TaxJurisdictionCode", tax.tax_jurisdiction_code),
    ):
        if value:
            line[name] = value
    return line


def _line_tax(plan: PostingPlan, line: PlanLine, sign: int = 1) -> dict[str, Any]:
    """A line's tax attributes: its classification code and, in the manual tax mode, its tax lines (negative on a
    credit memo)."""
    fields: dict[str, Any] = {}
    if line.tax_classification_code:
        fields["TaxClassificationCode"] = line.tax_classification_code
    if plan.tax_mode == TAX_MANUAL and line.tax_lines:
        fields[TAX_LINES[resource_for(plan)]] = [_tax_line(tax, sign) for tax in line.tax_lines]
    return fields


def _invoice_line(plan: PostingPlan, line: PlanLine) -> dict[str, Any]:
    item: dict[str, Any] = {
        "LineNumber": line.line_number,
        "Description": line.description,
        "Quantity": _num(line.quantity),
        "UnitSellingPrice": _num(line.unit_selling_price),
    }
    if line.memo_line:
        item["MemoLine"] = line.memo_line
    if line.freight_amount:
        item[LINE_FREIGHT] = _num(line.freight_amount)
    item.update(_line_tax(plan, line))
    return item


def _distributions(plan: PostingPlan) -> list[dict[str, Any]]:
    rows = []
    for dist in plan.distributions:
        if plan.tax_mode != TAX_MANUAL and dist.account_class in FUSION_TAX_LEAVES_OUT:
            continue
        row: dict[str, Any] = {
            "AccountClass": dist.account_class,
            "AccountCombination": dist.combination,
            "Amount": _num(dist.amount),
        }
        if dist.line_number is not None:
            row["InvoiceLineNumber"] = dist.line_number
        rows.append(row)
    return rows


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
    if plan.header_freight:
        body[HEADER_FREIGHT] = _num(plan.header_freight)
    body["receivablesInvoiceLines"] = [_invoice_line(plan, line) for line in plan.lines]
    if plan.distributions_mode == "manual" and plan.distributions:
        body["receivablesInvoiceDistributions"] = _distributions(plan)
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
                **_line_tax(plan, line, -1),
            }
            for line in plan.lines
        ]
    # A line whose amount is not credited on its own (none, or a reduction spread above) keeps its tax lines: a
    # line of no amount carries them.
    untouched = [line for line in plan.lines if line.amount <= 0 and line.tax_lines]
    shares = spread(reduction, [line.amount for line in positive], plan.currency)
    return [
        {
            "LineNumber": line.line_number,
            "LineDescription": f"{line.description} (net of {share} in reductions)"[:240],
            "LineQuantityCredit": 1,
            "UnitSellingPrice": _num(-(line.amount - share)),
            **({"MemoLine": line.memo_line} if line.memo_line else {}),
            **_line_tax(plan, line, -1),
        }
        for line, share in zip(positive, shares, strict=True)
    ] + [
        {
            "LineNumber": line.line_number,
            "LineDescription": f"{line.description} (tax only: its amount is in the lines above)"[:240],
            "LineQuantityCredit": 1,
            "UnitSellingPrice": 0,
            **_line_tax(plan, line, -1),
        }
        for line in untouched
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
    if plan.header_freight:
        body[CREDIT_MEMO_FREIGHT] = _num(-plan.header_freight)
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


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def payload_total(payload: dict[str, Any]) -> Decimal:
    """What a body would bill, computed back from the body itself: lines, their freight and tax lines, and the
    header freight (a credit memo's comes out positive). The tax Fusion computes itself is not in it."""
    credit = "receivablesCreditMemoLines" in payload
    resource = CREDIT_MEMOS if credit else INVOICES
    total = _dec(payload.get(CREDIT_MEMO_FREIGHT if credit else HEADER_FREIGHT))
    for line in payload.get("receivablesCreditMemoLines" if credit else "receivablesInvoiceLines", []):
        total += _dec(line["LineQuantityCredit" if credit else "Quantity"]) * _dec(line["UnitSellingPrice"])
        total += _dec(line.get(LINE_FREIGHT))
        total += sum((_dec(t["TaxAmount"]) for t in line.get(TAX_LINES[resource], [])), Decimal(0))
    return -total if credit else total


def billed_total(plan: PostingPlan) -> Decimal:
    """What the body of `plan` must bill: the plan's total, less the tax Fusion computes in the fusion mode."""
    return plan.total if plan.tax_mode == TAX_MANUAL else plan.total - plan.tax_total


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
    if billed != billed_total(plan):
        raise PermanentError(
            f"The {current.resource} body would bill {billed} but the plan totals {billed_total(plan)} {plan.currency}",
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
