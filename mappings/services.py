"""Mapping services: audited rule changes, the rules as the resolver's plain data, and the posting plan of a
record.

The admin, the import (admin and command line) and anything else that changes a rule go through rule_save /
rule_delete, so every change is validated and audited with its before and after values."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import connection as db_connection
from django.db import transaction

from audit.services import audit_record
from connector.documents import SalesDocument
from connector.models import Connection, Record
from connector.selectors import credited_invoice_number, order_of

from . import rules
from .models import AccountTemplate, CustomerRule, ProductRule, RuleBase, SegmentLayout, StoreRule, TaxRule

# --------------------------------------------------------------------------------------------------------------
# Rule changes, audited
# --------------------------------------------------------------------------------------------------------------


def _describe(rule: RuleBase) -> str:
    return f"{rule._meta.verbose_name} {rule}"


def rule_save(*, rule: RuleBase, actor: Any, via: str = "admin") -> RuleBase:
    """Validate and save a rule; audit the change with the values before and after. Saving an unchanged rule
    does nothing and writes no audit event."""
    model = type(rule)
    with transaction.atomic():
        current = model._default_manager.select_for_update().filter(pk=rule.pk).first() if rule.pk else None
        before = current.audit_values() if current is not None else None
        rule.full_clean()
        after = rule.audit_values()
        if before == after:
            return rule
        rule.save()
        changed = sorted(name for name in after if before is None or before.get(name) != after[name])
        verb = "created" if before is None else "updated"
        audit_record(
            action=f"mappings.{model.KIND}.{verb}",
            actor=actor,
            connection=rule.connection_id,
            target=rule,
            message=f"{_describe(rule)} {verb} ({via}); changed: {', '.join(changed)}",
            data={"kind": model.KIND, "via": via, "changed": changed, "before": before, "after": after},
        )
    return rule


def rule_delete(*, rule: RuleBase, actor: Any, via: str = "admin") -> None:
    model = type(rule)
    with transaction.atomic():
        before = rule.audit_values()
        rule_id, description = rule.pk, _describe(rule)
        rule.delete()
        audit_record(
            action=f"mappings.{model.KIND}.deleted",
            actor=actor,
            connection=rule.connection_id,
            target_type=model._meta.label_lower,
            target_id=rule_id,
            message=f"{description} deleted ({via})",
            data={"kind": model.KIND, "via": via, "before": before, "after": None},
        )


# --------------------------------------------------------------------------------------------------------------
# Snapshots and the posting plan
# --------------------------------------------------------------------------------------------------------------


def _dates(rule: RuleBase) -> dict[str, Any]:
    return {
        "effective_from": rule.effective_from,
        "effective_to": rule.effective_to,
        "enabled": rule.enabled,
        "rule_id": rule.pk,
    }


RULE_MODELS: tuple[type[RuleBase], ...] = (
    CustomerRule,
    ProductRule,
    StoreRule,
    AccountTemplate,
    SegmentLayout,
    TaxRule,
)
# Per process: connection id -> (the fingerprint of its rules when read, their snapshot).
_snapshots: dict[int, tuple[tuple[Any, ...], rules.RuleSet]] = {}


def rules_fingerprint(connection_id: int) -> tuple[Any, ...] | None:
    """In one query, the row versions of the connection's rules: each row's id, PostgreSQL's xmin (the
    transaction that wrote this version of the row) and ctid (where it lies: a row updated twice in one
    transaction moves), per rule table. Any insert, update (a queryset update or SQL too) or delete changes
    it. None where the database keeps no row versions (SQLite): no cache there."""
    if db_connection.vendor != "postgresql":
        return None
    parts = [
        "(SELECT md5(string_agg(id::text || xmin::text || ctid::text, ',' ORDER BY id)) "  # noqa: S608  (our names)
        f"FROM {db_connection.ops.quote_name(model._meta.db_table)} WHERE connection_id = %s)"
        for model in RULE_MODELS
    ]
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), [connection_id] * len(parts))
        return tuple(cursor.fetchone())


def rules_snapshot(*, connection: Connection) -> rules.RuleSet:
    """The connection's enabled rules as the resolver's frozen snapshots (the resolver picks those effective
    on the document date). Read again only when a rule row changed: every posting needs them, and reading and
    building them was one of its largest costs."""
    fingerprint = rules_fingerprint(connection.pk)
    cached = _snapshots.get(connection.pk)
    if fingerprint is not None and cached is not None and cached[0] == fingerprint:
        return cached[1]
    snapshot = _rules_read(connection)
    if fingerprint is not None:
        _snapshots[connection.pk] = (fingerprint, snapshot)
    return snapshot


def _rules_read(connection: Connection) -> rules.RuleSet:

    def enabled(model: type[RuleBase]):
        return model._default_manager.filter(connection=connection, enabled=True).order_by("pk")

    return rules.RuleSet(
        customers=tuple(
            rules.CustomerRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                bill_to_customer_number=r.bill_to_customer_number,
                bill_to_site=r.bill_to_site,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(CustomerRule)
        ),
        products=tuple(
            rules.ProductRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                item_number=r.item_number,
                memo_line=r.memo_line,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(ProductRule)
        ),
        stores=tuple(
            rules.StoreRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                business_unit=r.business_unit,
                transaction_source=r.transaction_source,
                transaction_type=r.transaction_type,
                credit_memo_transaction_type=r.credit_memo_transaction_type,
                currency_mode=r.currency_mode,
                conversion_rate_type=r.conversion_rate_type,
                ledger_currency=r.ledger_currency,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(StoreRule)
        ),
        templates=tuple(
            rules.AccountTemplateData(
                account_class=r.account_class,
                combination=r.combination,
                segments=dict(r.segments or {}),
                **_dates(r),
            )
            for r in enabled(AccountTemplate)
        ),
        layouts=tuple(
            rules.SegmentLayoutData(
                segment_names=r.names,
                delimiter=r.delimiter,
                winners=dict(r.winners or {}),
                **_dates(r),
            )
            for r in enabled(SegmentLayout)
        ),
        taxes=tuple(
            rules.TaxRuleData(
                match_type=r.match_type,
                match_value=r.match_value,
                tax_regime_code=r.tax_regime_code,
                tax_rate_code=r.tax_rate_code,
                tax=r.tax,
                tax_status_code=r.tax_status_code,
                tax_jurisdiction_code=r.tax_jurisdiction_code,
                tax_classification_code=r.tax_classification_code,
                country=r.country,
                **_dates(r),
            )
            for r in enabled(TaxRule)
        ),
    )


# Match types whose data Commerce's sales payloads do not carry.
STORE_FACT_MATCH_TYPES = ("website", "store_code")
PRODUCT_FACT_MATCH_TYPES = ("category", "attribute_set")


def rules_need(connection: Connection) -> set[str]:
    """Which of website, store_code, category and attribute_set the connection's enabled rules match on: the
    facts worth asking Commerce for (an empty set: ask nothing)."""
    snapshot = rules_snapshot(connection=connection)
    return {r.match_type for r in snapshot.stores if r.match_type in STORE_FACT_MATCH_TYPES} | {
        r.match_type for r in snapshot.products if r.match_type in PRODUCT_FACT_MATCH_TYPES
    }


def connection_defaults(connection: Connection) -> rules.ConnectionDefaults:
    return rules.ConnectionDefaults(
        slug=connection.slug,
        business_unit=connection.business_unit,
        transaction_source=connection.transaction_source,
        transaction_type=connection.transaction_type,
        credit_memo_transaction_type=connection.credit_memo_transaction_type,
        payment_terms=connection.payment_terms,
        ledger_currency=connection.currency,
        time_zone=connection.time_zone,
        transaction_number_prefix=connection.transaction_number_prefix,
        discount_mode=connection.discount_mode,
        distributions=connection.fusion_distributions,
        journal_mode=connection.journal_mode,
        invoice_event=connection.invoice_event,
        tax_mode=connection.tax_mode,
        freight_mode=connection.freight_mode,
        conversion_rate_type=connection.conversion_rate_type,
    )


def with_order_context(document: SalesDocument, order: SalesDocument | None) -> SalesDocument:
    """Commerce invoices and credit memos carry no customer, store, PO or applied taxes of their own: take them
    from their order, so they bill the same customer account, with the same taxes, as the order would."""
    if order is None or document.kind == Record.Kind.ORDER:
        return document
    customer = document.customer
    if not customer.commerce_id and not customer.email:
        customer = order.customer
    return dataclasses.replace(
        rules.inherit_tax_facts(document, order),
        customer=customer,
        store_id=document.store_id or order.store_id,
        website_id=document.website_id or order.website_id,
        store_code=document.store_code or order.store_code,
        purchase_order_number=document.purchase_order_number or order.purchase_order_number,
    )


def plan_for_record(
    record: Record, *, order: SalesDocument | None = None, document: SalesDocument | None = None
) -> rules.PostingPlan:
    """Resolve the record's document (or `document`, the same one enriched) against the connection's rules as
    they are now. Sends nothing. An invoice or credit memo takes its customer and store from its order (`order`,
    else the order's record)."""
    if document is None:
        document = SalesDocument.from_json(record.document)
    document = with_order_context(document, order or order_of(record))
    connection = record.connection
    return rules.resolve(
        document,
        rules_snapshot(connection=connection),
        connection_defaults(connection),
        original_invoice_number=credited_invoice_number(record, document),
    )
