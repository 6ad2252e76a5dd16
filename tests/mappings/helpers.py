"""A connection with a small but complete set of mapping rules, saved through the services."""

from __future__ import annotations

from datetime import date
from typing import Any

from connector.models import Connection
from mappings.models import AccountTemplate, CustomerRule, ProductRule, SegmentLayout, StoreRule, TaxRule
from mappings.services import rule_save
from tests.factories import make_connection

TEMPLATES = {
    "revenue": "01-000-4000-0000-00",
    "receivable": "01-000-1210-0000-00",
    "freight": "01-000-4510-0000-00",
    "tax": "01-000-2200-0000-00",
    "discount": "01-000-4900-0000-00",
    "rounding": "01-000-7990-0000-00",
    "clearing": "01-000-1990-0000-00",
}


def mapped_connection(**overrides: Any) -> Connection:
    connection = make_connection(**overrides)
    actor = "test:setup"
    rule_save(
        rule=SegmentLayout(
            connection=connection,
            segment_names="company, dept, account, product, channel",
            winners={"account": "product", "channel": "customer"},
        ),
        actor=actor,
    )
    for account_class, combination in TEMPLATES.items():
        rule_save(
            rule=AccountTemplate(connection=connection, account_class=account_class, combination=combination),
            actor=actor,
        )
    rule_save(
        rule=StoreRule(connection=connection, match_type="website", match_value="1", segments={"company": "01"}),
        actor=actor,
    )
    rule_save(
        rule=CustomerRule(
            connection=connection,
            match_type="customer_group",
            match_value="3",
            bill_to_customer_number="1008",
            bill_to_site="1042",
            segments={"channel": "20"},
        ),
        actor=actor,
    )
    rule_save(
        rule=CustomerRule(
            connection=connection, match_type="default", bill_to_customer_number="WEB-1000", bill_to_site="WEB"
        ),
        actor=actor,
    )
    rule_save(
        rule=ProductRule(
            connection=connection,
            match_type="sku",
            match_value="LAP-15",
            item_number="LAPTOP-15",
            segments={"account": "4110", "product": "0015"},
            effective_from=date(2026, 1, 1),
            notes="Laptops book to 4110 from 2026",
        ),
        actor=actor,
    )
    rule_save(rule=ProductRule(connection=connection, match_type="default", segments={"product": "9999"}), actor=actor)
    rule_save(
        rule=TaxRule(
            connection=connection,
            match_type="default",
            tax_regime_code="FUS_STCC_REGIME-UES",
            tax_rate_code="VAT20",
            tax_classification_code="VAT20",
        ),
        actor=actor,
    )
    return connection
