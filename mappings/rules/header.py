"""The AR invoice header: business unit, transaction source and type from the store rule or the connection,
the bill-to customer from the customer rule, currency conversion, the transaction number and comments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.documents import Customer, SalesDocument

from .data import DEFAULT_RATE_TYPE, USER_RATE_TYPE, ConnectionDefaults, StoreRuleData
from .matching import Matched
from .plan import COMMENTS_MAX, Conversion, PlanHeader, Problems, cut

# The rate Fusion takes for the User rate type: this many decimals.
RATE_PLACES = 10

_KIND_WORDS = {"order": "order", "invoice": "invoice", "creditmemo": "credit memo"}


def build_header(
    document: SalesDocument,
    defaults: ConnectionDefaults,
    on: date,
    store: Matched | None,
    customer: Matched | None,
    problems: Problems,
    *,
    original_invoice_number: str,
) -> PlanHeader:
    """The header, dated `on`; a problem for each setting neither the store rule nor the connection gives, for
    a customer no rule matches, and for a conversion that cannot be made."""
    rule = store.rule if store is not None and isinstance(store.rule, StoreRuleData) else None
    credit_memo = document.kind == "creditmemo"
    business_unit, transaction_source, transaction_type = _transaction_setup(document, defaults, rule, problems)
    bill_to_number, bill_to_site = _bill_to(document.customer, customer, problems)
    currency = document.currency.upper()
    ledger_currency = (_pick(rule, "ledger_currency", defaults.ledger_currency) or currency).upper()
    rate_type = _pick(rule, "conversion_rate_type", defaults.conversion_rate_type) or DEFAULT_RATE_TYPE
    conversion = _conversion(document, rate_type, ledger_currency, on, problems)
    transaction_number, original = _numbers(document, defaults, original_invoice_number)
    return PlanHeader(
        business_unit=business_unit,
        transaction_source=transaction_source,
        transaction_type=transaction_type,
        transaction_number=transaction_number,
        transaction_date=on,
        accounting_date=on,
        bill_to_customer_number=bill_to_number,
        bill_to_site=bill_to_site,
        payment_terms="" if credit_memo else defaults.payment_terms,
        currency=currency,
        conversion=conversion,
        purchase_order=document.purchase_order_number[:50],
        cross_reference=f"commerce-{document.kind}-{document.entity_id}",
        comments=cut(_comments(document, original), COMMENTS_MAX),
        original_invoice_number=original,
        bill_to_reason=customer.label if customer is not None else "no customer rule",
        store_reason=store.label if store is not None else "connection defaults",
    )


def _pick(rule: StoreRuleData | None, field_name: str, default: str) -> str:
    """The store rule's value of field_name, or the connection's when the rule has none."""
    value: str = getattr(rule, field_name, "") if rule is not None else ""
    return value or default


def _transaction_setup(
    document: SalesDocument, defaults: ConnectionDefaults, rule: StoreRuleData | None, problems: Problems
) -> tuple[str, str, str]:
    """Business unit, transaction source and transaction type (the credit memo type for a credit memo)."""
    business_unit = _pick(rule, "business_unit", defaults.business_unit)
    transaction_source = _pick(rule, "transaction_source", defaults.transaction_source)
    if document.kind == "creditmemo":
        transaction_type = _pick(rule, "credit_memo_transaction_type", defaults.credit_memo_transaction_type)
    else:
        transaction_type = _pick(rule, "transaction_type", defaults.transaction_type)
    for label, value in (
        ("business unit", business_unit),
        ("transaction source", transaction_source),
        ("transaction type", transaction_type),
    ):
        if not value:
            problems.add(
                "posting_default_missing",
                f"No {label} is set for this store or the connection.",
                f"Set the {label} on the connection or on a store rule in Mappings > Store rules, then replay "
                "the record.",
            )
    return business_unit, transaction_source, transaction_type


def _bill_to(c: Customer, customer: Matched | None, problems: Problems) -> tuple[str, str]:
    """The bill-to customer number and site of the customer rule; a problem when no rule matches."""
    if customer is None:
        who = f"customer {c.commerce_id}" if c.commerce_id and not c.is_guest else "guest customer"
        problems.add(
            "customer_mapping_missing",
            f"No customer rule matches {who} (email {c.email or 'none'}, group {c.group_id or 'none'}, company "
            f"{c.company or 'none'}) and there is no default customer rule.",
            "Add a customer rule for this customer (by customer id, email, company or customer group) or a "
            "default customer rule in Mappings > Customer rules, then replay the record.",
        )
    customer_rule = customer.rule if customer is not None else None
    return getattr(customer_rule, "bill_to_customer_number", ""), getattr(customer_rule, "bill_to_site", "")


def _conversion(
    document: SalesDocument, rate_type: str, ledger_currency: str, on: date, problems: Problems
) -> Conversion | None:
    """How Fusion converts the document to the ledger currency, whenever the currencies differ: the rate type
    (the store rule's, else the connection's) on the accounting date, with the rate itself for the User type.
    Oracle's foreign-currency example sends all three; no page says Fusion defaults them (fusion.md §11.4)."""
    currency = document.currency.upper()
    if currency == ledger_currency:
        return None
    rate: Decimal | None = None
    if rate_type == USER_RATE_TYPE:
        # Commerce: order amount = base amount x base_to_order_rate. Fusion wants invoice -> ledger.
        if (document.base_currency or "").upper() == ledger_currency and document.base_to_order_rate:
            rate = (Decimal(1) / Decimal(document.base_to_order_rate)).quantize(Decimal(1).scaleb(-RATE_PLACES))
        else:
            problems.add(
                "conversion_rate_missing",
                f"The User rate type needs the rate from {currency} to {ledger_currency}, but the order "
                f"carries no rate from {ledger_currency} (its base currency is "
                f"{document.base_currency or 'unknown'}).",
                "Use a Fusion rate type such as Corporate on the store rule or the connection, or set the Commerce "
                "base currency to the ledger currency, then replay the record.",
            )
    return Conversion(rate_type=rate_type, conversion_date=on, rate=rate)


def _numbers(document: SalesDocument, defaults: ConnectionDefaults, original_invoice_number: str) -> tuple[str, str]:
    """The Fusion transaction number and, for a credit memo, the number of the invoice it credits: the one
    given, else (when orders are what is invoiced) the order's."""
    prefix = defaults.transaction_number_prefix
    if document.kind != "creditmemo":
        return f"{prefix}{document.increment_id}", ""
    # Commerce numbers orders, invoices and credit memos in separate sequences; credit memos get their own
    # marker so "MAG-000000012" the invoice and credit memo 000000012 never share a Fusion number.
    original = original_invoice_number
    if not original and defaults.invoice_event == "order" and document.order_increment_id:
        original = f"{prefix}{document.order_increment_id}"
    return f"{prefix}CM-{document.increment_id}", original


def _comments(document: SalesDocument, original: str) -> str:
    """ "Adobe Commerce credit memo 000000012 for order 000000009; credits invoice MAG-000000009"."""
    comments = f"Adobe Commerce {_KIND_WORDS.get(document.kind, document.kind)} {document.increment_id}"
    if document.kind != "order" and document.order_increment_id:
        comments += f" for order {document.order_increment_id}"
    if original:
        comments += f"; credits invoice {original}"
    return comments
