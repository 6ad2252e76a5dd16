"""The GL resolver: a SalesDocument plus snapshots of the mapping rules in, a PostingPlan out.

Pure on purpose: no database, no I/O, no Django. Everything it needs arrives as plain frozen dataclasses, so
every precedence, overlay and rounding decision is tested exhaustively without a database, and the plan says
for every account which rule set which segment.

    data      the rule snapshots (RuleSet) and the connection's posting defaults
    matching  effective dates and the customer, product and store precedence
    accounts  account combinations from template and rules; segment values as text
    money     quantity and unit price per line
    plan      the PostingPlan and its parts
    resolver  resolve(): the steps from document to plan
"""

from .accounts import TEMPLATE_PURPOSES, Account, format_segment_values, parse_segment_values
from .data import (
    CURRENCY_CONVERT,
    CURRENCY_KEEP,
    DEFAULT_WINNER,
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
)
from .header import RATE_PLACES
from .lines import PREPAYMENTS
from .matching import (
    CUSTOMER_MATCH_TYPES,
    MATCH_LABELS,
    PRODUCT_MATCH_TYPES,
    STORE_MATCH_TYPES,
    Matched,
    is_effective,
    match_customer,
    match_product,
    match_store,
    untested_match_types,
)
from .money import UNIT_PRICE_PLACES, price_line
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
    PostingPlan,
    Problem,
)
from .resolver import resolve

__all__ = [
    "COMMENTS_MAX",
    "CURRENCY_CONVERT",
    "CURRENCY_KEEP",
    "CUSTOMER_MATCH_TYPES",
    "DEFAULT_WINNER",
    "DESCRIPTION_MAX",
    "FREIGHT",
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
    "PostingPlan",
    "Problem",
    "ProductRuleData",
    "RuleSet",
    "SegmentLayoutData",
    "StoreRuleData",
    "format_segment_values",
    "is_effective",
    "match_customer",
    "match_product",
    "match_store",
    "parse_segment_values",
    "price_line",
    "resolve",
    "untested_match_types",
]
