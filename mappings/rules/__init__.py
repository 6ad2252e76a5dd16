"""The GL resolver: a SalesDocument plus snapshots of the mapping rules in, a PostingPlan out.

Pure on purpose: no database, no I/O, no Django. Everything it needs arrives as plain frozen dataclasses, so
every precedence, overlay and rounding decision is tested exhaustively without a database, and the plan says
for every account which rule set which segment.

    data      the rule snapshots (RuleSet) and the connection's posting defaults
    matching  effective dates and the customer, product, store and tax precedence
    accounts  account combinations from template and rules; segment values as text
    money     quantity and unit price per line; sharing an amount out to the cent
    taxes     each Commerce tax mapped to Fusion's codes: manual tax lines or a classification code
    plan      the PostingPlan and its parts
    resolver  resolve(): the steps from document to plan
"""

from .accounts import TEMPLATE_PURPOSES, Account, format_segment_values, parse_segment_values
from .data import (
    CURRENCY_CONVERT,
    CURRENCY_KEEP,
    DEFAULT_RATE_TYPE,
    DEFAULT_WINNER,
    FREIGHT_ALLOCATED,
    FREIGHT_HEADER,
    TAX_FUSION,
    TAX_MANUAL,
    TEMPLATE_CLASSES,
    USER_RATE_TYPE,
    WINNERS,
    AccountTemplateData,
    ConnectionDefaults,
    CustomerRuleData,
    ProductRuleData,
    RuleSet,
    SegmentLayoutData,
    StoreRuleData,
    TaxRuleData,
)
from .header import RATE_PLACES
from .lines import PREPAYMENTS
from .matching import (
    CUSTOMER_MATCH_TYPES,
    MATCH_LABELS,
    PRODUCT_MATCH_TYPES,
    STORE_MATCH_TYPES,
    TAX_MATCH_TYPES,
    Matched,
    is_effective,
    match_customer,
    match_product,
    match_store,
    match_tax,
    parse_rate,
    untested_match_types,
)
from .money import UNIT_PRICE_PLACES, price_line, spread
from .plan import (
    COMMENTS_MAX,
    DESCRIPTION_MAX,
    FREIGHT,
    LINE_ADJUSTMENT,
    LINE_DISCOUNT,
    LINE_FREIGHT,
    LINE_ITEM,
    LINE_PREPAYMENT,
    LINE_ROUNDING,
    RECEIVABLE,
    REVENUE,
    TAX,
    Conversion,
    Distribution,
    JournalLine,
    PlanHeader,
    PlanLine,
    PlanTaxLine,
    PostingPlan,
    Problem,
)
from .resolver import resolve
from .taxes import inherit_tax_facts

__all__ = [
    "COMMENTS_MAX",
    "CURRENCY_CONVERT",
    "CURRENCY_KEEP",
    "CUSTOMER_MATCH_TYPES",
    "DEFAULT_RATE_TYPE",
    "DEFAULT_WINNER",
    "DESCRIPTION_MAX",
    "FREIGHT",
    "FREIGHT_ALLOCATED",
    "FREIGHT_HEADER",
    "LINE_ADJUSTMENT",
    "LINE_DISCOUNT",
    "LINE_FREIGHT",
    "LINE_ITEM",
    "LINE_PREPAYMENT",
    "LINE_ROUNDING",
    "MATCH_LABELS",
    "PREPAYMENTS",
    "PRODUCT_MATCH_TYPES",
    "RATE_PLACES",
    "RECEIVABLE",
    "REVENUE",
    "STORE_MATCH_TYPES",
    "TAX",
    "TAX_FUSION",
    "TAX_MANUAL",
    "TAX_MATCH_TYPES",
    "TEMPLATE_CLASSES",
    "TEMPLATE_PURPOSES",
    "UNIT_PRICE_PLACES",
    "USER_RATE_TYPE",
    "WINNERS",
    "Account",
    "AccountTemplateData",
    "ConnectionDefaults",
    "Conversion",
    "CustomerRuleData",
    "Distribution",
    "JournalLine",
    "Matched",
    "PlanHeader",
    "PlanLine",
    "PlanTaxLine",
    "PostingPlan",
    "Problem",
    "ProductRuleData",
    "RuleSet",
    "SegmentLayoutData",
    "StoreRuleData",
    "TaxRuleData",
    "format_segment_values",
    "inherit_tax_facts",
    "is_effective",
    "match_customer",
    "match_product",
    "match_store",
    "match_tax",
    "parse_rate",
    "parse_segment_values",
    "price_line",
    "resolve",
    "spread",
    "untested_match_types",
]
