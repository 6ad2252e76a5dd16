"""Snapshots of the mapping rules and of the connection's posting defaults: what the resolver reads.

mappings.services builds them from the database; tests build them by hand. All frozen, no Django."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

# Account template classes a connection configures.
TEMPLATE_CLASSES = ("revenue", "receivable", "freight", "tax", "discount", "rounding", "clearing", "prepayment")

# Who sets a segment when both the customer and the product rule give it a value (SegmentLayoutData.winners).
WINNERS = ("customer", "product", "template")
DEFAULT_WINNER = "product"

# StoreRuleData.currency_mode. Either way the document goes in the order currency with its conversion (rate type,
# date, and the rate for User) whenever that differs from the ledger currency; `convert` also insists the rule names
# its own rate type rather than taking the connection's.
CURRENCY_KEEP, CURRENCY_CONVERT = "order", "convert"
# The conversion rate type whose rate the document itself supplies, and the one used when neither the store rule
# nor the connection names one.
USER_RATE_TYPE = "User"
DEFAULT_RATE_TYPE = "Corporate"

# ConnectionDefaults.tax_mode: Commerce's tax amounts go as manual tax lines with the mapped codes, or only the
# tax classification code goes and Fusion computes the tax (read back and compared after the create).
TAX_MANUAL, TAX_FUSION = "manual", "fusion"
# ConnectionDefaults.freight_mode: shipping as AllocatedFreightAmount spread over the lines, or at the header.
FREIGHT_ALLOCATED, FREIGHT_HEADER = "allocated", "header"


@dataclass(frozen=True)
class CustomerRuleData:
    match_type: str
    match_value: str
    bill_to_customer_number: str
    bill_to_site: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class ProductRuleData:
    match_type: str
    match_value: str
    item_number: str = ""
    memo_line: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class StoreRuleData:
    match_type: str
    match_value: str
    business_unit: str = ""
    transaction_source: str = ""
    transaction_type: str = ""
    credit_memo_transaction_type: str = ""
    currency_mode: str = CURRENCY_KEEP
    conversion_rate_type: str = ""
    ledger_currency: str = ""
    segments: Mapping[str, str] = field(default_factory=dict)
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class TaxRuleData:
    """Which Fusion tax a Commerce tax is: matched by the applied tax's code or title (`tax_code`), by its rate
    and the tax country (`rate`; a blank country is any country), or `default`."""

    match_type: str
    match_value: str
    tax_regime_code: str = ""
    tax_rate_code: str = ""
    tax: str = ""
    tax_status_code: str = ""
    tax_jurisdiction_code: str = ""
    tax_classification_code: str = ""
    country: str = ""
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class AccountTemplateData:
    account_class: str
    combination: str = ""  # concatenated, e.g. 01-000-4110-0000-000; or:
    segments: Mapping[str, str] = field(default_factory=dict)  # segment name -> value
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class SegmentLayoutData:
    segment_names: tuple[str, ...]
    delimiter: str = "-"
    winners: Mapping[str, str] = field(default_factory=dict)  # segment -> customer | product | template
    effective_from: date | None = None
    effective_to: date | None = None
    enabled: bool = True
    rule_id: int | None = None


@dataclass(frozen=True)
class RuleSet:
    customers: tuple[CustomerRuleData, ...] = ()
    products: tuple[ProductRuleData, ...] = ()
    stores: tuple[StoreRuleData, ...] = ()
    templates: tuple[AccountTemplateData, ...] = ()
    layouts: tuple[SegmentLayoutData, ...] = ()
    taxes: tuple[TaxRuleData, ...] = ()


@dataclass(frozen=True)
class ConnectionDefaults:
    """The connection's posting defaults, as the resolver needs them."""

    slug: str = ""
    business_unit: str = ""
    transaction_source: str = ""
    transaction_type: str = "Invoice"
    credit_memo_transaction_type: str = "Credit Memo"
    payment_terms: str = "Immediate"
    ledger_currency: str = "USD"
    time_zone: str = "UTC"
    transaction_number_prefix: str = ""
    discount_mode: str = "net"  # net | separate
    distributions: str = "manual"  # manual | auto (AutoAccounting)
    journal_mode: str = "none"  # sales_journal | none
    invoice_event: str = "order"  # order | invoice
    tax_mode: str = TAX_MANUAL  # manual | fusion
    freight_mode: str = FREIGHT_ALLOCATED  # allocated | header
    conversion_rate_type: str = DEFAULT_RATE_TYPE  # when the store rule names none
