"""Receivables documents in Fusion: the AR invoice (receivablesInvoices) and the on-account credit memo
(receivablesCreditMemos) built from a posting plan. Fusion has no idempotency key, so every create is
preceded by a look-up on TransactionNumber, source and business unit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connector.exceptions import PermanentError
from mappings.rules import PostingPlan

from .query import q_expr

INVOICES = "receivablesInvoices"
CREDIT_MEMOS = "receivablesCreditMemos"
LOOKUP_FIELDS = "CustomerTransactionId,TransactionNumber,TransactionSource,BusinessUnit"


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


def invoice_payload(plan: PostingPlan, *, complete: bool) -> dict[str, Any]:
    header = plan.header
    body: dict[str, Any] = {
        "BusinessUnit": header.business_unit,
        "TransactionSource": header.transaction_source,
        "TransactionType": header.transaction_type,
        "TransactionNumber": header.transaction_number,
        "TransactionDate": header.transaction_date.isoformat(),
        "AccountingDate": header.accounting_date.isoformat(),
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


def credit_memo_payload(plan: PostingPlan, *, complete: bool) -> dict[str, Any]:
    """An on-account credit memo: amounts negative, naming the credited invoice in the cross-reference and
    comments (reference/fusion.md §4: applying to a specific invoice over REST is not documented)."""
    header = plan.header
    original = header.original_invoice_number
    comments = header.comments
    if original and original not in comments:
        comments = f"{comments} Credits invoice {original}.".strip()
    body: dict[str, Any] = {
        "BusinessUnit": header.business_unit,
        "TransactionSource": header.transaction_source,
        "TransactionType": header.transaction_type,
        "TransactionNumber": header.transaction_number,
        "TransactionDate": header.transaction_date.isoformat(),
        "AccountingDate": header.accounting_date.isoformat(),
        "CreditMemoCurrency": header.currency,
        "BillToCustomerNumber": header.bill_to_customer_number,
        "CrossReference": original or header.cross_reference,
        "CreditMemoComments": comments[:240],
        "receivablesCreditMemoLines": [
            {
                "LineNumber": line.line_number,
                "LineDescription": line.description,
                "LineQuantityCredit": _num(line.quantity),
                "UnitSellingPrice": _num(-line.unit_selling_price),
                **({"MemoLine": line.memo_line} if line.memo_line else {}),
            }
            for line in plan.lines
        ],
    }
    if header.bill_to_site:
        body["BillToSite"] = header.bill_to_site
    body.update(_conversion_fields(plan))
    if complete:
        body["InvoiceStatus"] = "Complete"
    return body


def document_find(*, client, plan: PostingPlan) -> PostedDocument | None:
    """Look the document up by TransactionNumber, TransactionSource and BusinessUnit."""
    header = plan.header
    q = q_expr(
        ("TransactionNumber", "=", header.transaction_number),
        ("TransactionSource", "=", header.transaction_source),
        ("BusinessUnit", "=", header.business_unit),
    )
    answer = client.get(resource_for(plan), params={"q": q, "onlyData": "true", "fields": LOOKUP_FIELDS})
    items = [i for i in answer.get("items") or [] if str(i.get("TransactionNumber")) == header.transaction_number]
    if len(items) > 1:
        raise PermanentError(
            f"Fusion holds {len(items)} documents numbered {header.transaction_number} in source "
            f"{header.transaction_source}",
            hint="Resolution: check the duplicates in Fusion's Receivables; keep one, then replay or mark ignored.",
        )
    if not items:
        return None
    return PostedDocument(str(items[0]["CustomerTransactionId"]), header.transaction_number, adopted=True)


def document_post(*, client, plan: PostingPlan, complete: bool) -> PostedDocument:
    """Adopt the document if Fusion already has it, else create it (one POST, never retried here)."""
    found = document_find(client=client, plan=plan)
    if found is not None:
        return found
    payload = (
        credit_memo_payload(plan, complete=complete)
        if plan.is_credit_memo
        else invoice_payload(plan, complete=complete)
    )
    answer = client.post(resource_for(plan), json=payload)
    transaction_id = answer.get("CustomerTransactionId")
    if transaction_id in (None, ""):
        raise PermanentError("Fusion accepted the document but returned no CustomerTransactionId")
    return PostedDocument(
        str(transaction_id), str(answer.get("TransactionNumber") or plan.header.transaction_number), adopted=False
    )
