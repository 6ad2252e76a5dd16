"""The fusion tax mode's check after the create: Fusion computed the tax from the classification codes, so read
the document's tax back and compare it with what Commerce charged. A difference beyond the tolerance is for a
person to settle (the record is parked with both figures); within it, the check is audited and posting goes on."""

from __future__ import annotations

from decimal import Decimal

from audit.services import audit_record
from connector.documents import currency_exponent, quantize
from connector.models import Record
from fusion import invoices
from fusion.client import FusionApi
from mappings.rules import TAX_FUSION, PostingPlan


def tax_tolerance(plan: PostingPlan, configured: Decimal) -> Decimal:
    """The connection's tolerance, but never less than one minor unit per taxed line (Fusion rounds per line)."""
    taxed = sum(1 for line in plan.lines if line.tax_amount)
    return max(configured, Decimal(1).scaleb(-currency_exponent(plan.currency)) * taxed)


def fusion_tax_check(*, record: Record, plan: PostingPlan, client: FusionApi, actor: str) -> tuple[str, str] | None:
    """None when the plan's tax is Commerce's own (manual mode) or Fusion's tax agrees with it; else the reason
    and the fix to park the record with."""
    if plan.tax_mode != TAX_FUSION:
        return None
    held = client.receivables_tax(invoices.resource_for(plan), record.fusion_transaction_id)
    fusion_tax, charged = quantize(held.tax_total, plan.currency), plan.tax_total
    difference = fusion_tax - charged
    tolerance = tax_tolerance(plan, Decimal(record.connection.tax_tolerance)).normalize()
    kind = "credit memo" if plan.is_credit_memo else "invoice"
    figures = {
        "fusion_tax": str(fusion_tax),
        "commerce_tax": str(charged),
        "difference": str(difference),
        "tolerance": f"{tolerance:f}",
        "currency": plan.currency,
        "fusion_tax_lines": held.tax_lines,
    }
    if abs(difference) <= tolerance:
        audit_record(
            action="record.tax_checked",
            actor=actor,
            connection=record.connection_id,
            target=record,
            message=f"Fusion's tax {fusion_tax} on {kind} {record.fusion_transaction_number} agrees with "
            f"Commerce's {charged} {plan.currency}",
            data=figures,
        )
        return None
    reason = (
        f"Fusion computed tax of {fusion_tax} {plan.currency} on {kind} {record.fusion_transaction_number} "
        f"(id {record.fusion_transaction_id}), but Commerce charged {charged}: a difference of {difference}, more "
        f"than the tolerance of {tolerance:f}."
    )
    hint = (
        "Resolution: compare the tax classification codes of the tax rules (Mappings > Tax rules) with Fusion's "
        "tax setup for this customer's ship-to, correct the tax on the Fusion document (or credit it and post the "
        "sale by hand), then replay: the replay reads Fusion's tax again."
    )
    return reason, hint
