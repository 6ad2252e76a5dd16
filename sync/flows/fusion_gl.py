"""The GL assignment the sync from Fusion writes on Commerce customers and products: the segment values of the
customer rule, or product rule, in effect today for that customer or SKU, matched by the resolver's own functions
(mappings.rules), written "account=4110; product=0015" in the layout's order ('' when no rule matches).

Customer rules kept by the sync itself (synced_from_fusion) are left out: they carry what the other rules give, so
counting them would make a customer's GL value its own echo. A rules version (a hash of the rules in effect today)
is stored on each link with what was written; the GL stream recomputes the links whose version differs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from connector.documents import Customer, SalesLine
from connector.models import Connection
from mappings.models import CustomerRule, ProductRule
from mappings.rules import (
    CustomerRuleData,
    ProductRuleData,
    format_segment_values,
    is_effective,
    match_customer,
    match_product,
)
from mappings.selectors import segment_layout_on


def connection_today(connection: Connection, now: datetime | None = None) -> date:
    """Today in the connection's time zone: the day whose rules are in effect."""
    try:
        zone = ZoneInfo(connection.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or timezone.now()).astimezone(zone).date()


def _dates(rule: Any) -> dict[str, Any]:
    return {
        "effective_from": rule.effective_from,
        "effective_to": rule.effective_to,
        "enabled": rule.enabled,
        "rule_id": rule.pk,
    }


def _version(layout: tuple[str, ...], rules: Iterable[Any], on: date) -> str:
    """A hash of the rules in effect on `on` (what they match and set) and of the layout's segment order."""
    effective = sorted(
        (
            [r.match_type, r.match_value.casefold(), sorted((r.segments or {}).items()), r.rule_id or 0]
            for r in rules
            if is_effective(r, on)
        ),
        key=lambda row: (row[0], row[1], row[3]),
    )
    text = json.dumps({"layout": list(layout), "rules": effective}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class GlRules:
    """A connection's customer and product rules as of one day, ready to match."""

    on: date
    layout: tuple[str, ...]
    customers: tuple[CustomerRuleData, ...]
    products: tuple[ProductRuleData, ...]
    customer_version: str
    product_version: str

    def customer_segments(self, customer_id: str, facts: Mapping[str, Any]) -> dict[str, str]:
        customer = Customer(
            commerce_id=str(customer_id or ""),
            email=str(facts.get("email") or ""),
            group_id=str(facts.get("group_id") or ""),
            company=str(facts.get("company") or ""),
        )
        matched = match_customer(customer, self.customers, self.on)
        return dict(matched.segments) if matched is not None else {}

    def customer_gl(self, customer_id: str, facts: Mapping[str, Any]) -> str:
        return format_segment_values(self.customer_segments(customer_id, facts), self.layout)

    def product_gl(self, sku: str, facts: Mapping[str, Any]) -> str:
        line = SalesLine(
            line_id="",
            sku=sku,
            name="",
            qty=Decimal("0"),
            unit_price=Decimal("0"),
            row_total=Decimal("0"),
            attribute_set_id=str(facts.get("attribute_set_id") or ""),
            category_ids=tuple(str(c) for c in facts.get("category_ids") or ()),
        )
        matched = match_product(line, self.products, self.on)
        return format_segment_values(dict(matched.segments), self.layout) if matched is not None else ""


def gl_rules(connection: Connection, now: datetime | None = None) -> GlRules:
    """The enabled customer rules (but those the sync keeps) and product rules of the connection, as of today."""
    on = connection_today(connection, now)
    layout, _ = segment_layout_on(connection, on)
    customers = tuple(
        CustomerRuleData(
            match_type=r.match_type,
            match_value=r.match_value,
            bill_to_customer_number=r.bill_to_customer_number,
            bill_to_site=r.bill_to_site,
            segments=dict(r.segments or {}),
            **_dates(r),
        )
        for r in CustomerRule.objects.filter(connection=connection, enabled=True, synced_from_fusion=False).order_by(
            "pk"
        )
    )
    products = tuple(
        ProductRuleData(
            match_type=r.match_type,
            match_value=r.match_value,
            item_number=r.item_number,
            memo_line=r.memo_line,
            segments=dict(r.segments or {}),
            **_dates(r),
        )
        for r in ProductRule.objects.filter(connection=connection, enabled=True).order_by("pk")
    )
    return GlRules(
        on=on,
        layout=tuple(layout),
        customers=customers,
        products=products,
        customer_version=_version(tuple(layout), customers, on),
        product_version=_version(tuple(layout), products, on),
    )
