"""Fill in what Commerce's sales payloads leave out but the GL rules match on.

An order, invoice or credit memo names its store view by id and its items by SKU only, while store rules may
match a store code or website and product rules an attribute set or category. Those facts come from the
Commerce REST API (store views; a product by SKU), asked only when the connection's enabled rules match on them
and only for what the document lacks, and kept in the shared cache per connection so a busy store makes few
calls. A Commerce failure raises the usual TransientError / PermanentError: the pipeline retries or parks.
What Commerce cannot tell (a store view it does not list, a SKU it has no product for) stays empty, and the
resolver says so on the plan rather than guessing."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction

from audit.services import audit_record
from connector.documents import SalesDocument, SalesLine
from connector.models import Connection, Record
from connector.selectors import order_of
from core.errors import NotFoundError
from mappings.services import rules_need

from .client import CommerceClient, ProductFacts, StoreView

logger = logging.getLogger(__name__)

STORE_VIEWS_SECONDS = 60 * 60
PRODUCT_SECONDS = 60 * 60
# A SKU Commerce has no product for (deleted since, or a custom-option SKU), or a product in no category, is
# asked again sooner: someone may be fixing it in Commerce before replaying the record.
UNKNOWN_PRODUCT_SECONDS = 5 * 60

STORE_FACTS = frozenset({"website", "store_code"})
PRODUCT_FACTS = frozenset({"category", "attribute_set"})


class _Facts:
    """One document's look-ups: the shared cache first, Commerce on a miss (one client, built on first use)."""

    def __init__(self, connection: Connection, client: CommerceClient | None) -> None:
        self.connection = connection
        self._client = client
        scope = f"{connection.commerce_base_url}|{connection.commerce_store_code}"
        # The base URL is in the key so pointing a connection at another Commerce does not reuse its answers.
        self.prefix = f"commerce:facts:{connection.pk}:{_digest(scope)[:16]}"
        self._products: dict[str, ProductFacts | None] = {}

    @property
    def client(self) -> CommerceClient:
        if self._client is None:
            self._client = CommerceClient.for_connection(self.connection)
        return self._client

    def store_view(self, store_id: str) -> StoreView | None:
        key = f"{self.prefix}:store-views"
        cached = cache.get(key)
        if cached is not None:
            views = [StoreView(*row) for row in cached]
            found = next((v for v in views if v.id == store_id), None)
            if found is not None:
                return found
            # A store view created since the list was cached: read the list again (once for this document).
        views = self.client.store_views()
        cache.set(key, [[v.id, v.code, v.website_id] for v in views], STORE_VIEWS_SECONDS)
        return next((v for v in views if v.id == store_id), None)

    def product(self, sku: str) -> ProductFacts | None:
        if sku in self._products:
            return self._products[sku]
        key = f"{self.prefix}:product:{_digest(sku)[:32]}"
        cached = cache.get(key)
        if cached is not None:
            facts = (
                None
                if cached.get("missing")
                else ProductFacts(sku, cached["attribute_set_id"], tuple(cached["category_ids"]))
            )
        else:
            try:
                facts = self.client.product_facts(sku)
            except NotFoundError as exc:
                if "route" in exc.message.casefold():  # "Request does not match any route": a wrong URL, not the SKU
                    raise
                logger.info(
                    "Commerce has no product %s; its category and attribute set stay unknown",
                    sku,
                    extra={"connection_id": self.connection.pk},
                )
                facts = None
            if facts is None:
                cache.set(key, {"missing": True}, UNKNOWN_PRODUCT_SECONDS)
            else:
                value = {"attribute_set_id": facts.attribute_set_id, "category_ids": list(facts.category_ids)}
                complete = facts.attribute_set_id and facts.category_ids
                cache.set(key, value, PRODUCT_SECONDS if complete else UNKNOWN_PRODUCT_SECONDS)
        self._products[sku] = facts
        return facts


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_enrich(
    *,
    document: SalesDocument,
    connection: Connection,
    client: CommerceClient | None = None,
    order: SalesDocument | None = None,
) -> SalesDocument:
    """The document with the store code, website id, attribute sets and category ids the connection's rules
    match on filled in where it lacks them (the same document when there is nothing to fill). An invoice or
    credit memo without a store id of its own is looked up by its `order`'s store, as the resolver would."""
    need = rules_need(connection)
    if not need:
        return document
    facts = _Facts(connection, client)

    if need & STORE_FACTS:
        store_id = document.store_id or (order.store_id if order is not None else "")
        website_id = document.website_id or (order.website_id if order is not None else "")
        store_code = document.store_code or (order.store_code if order is not None else "")
        lacking = ("website" in need and not website_id) or ("store_code" in need and not store_code)
        if store_id and lacking:
            view = facts.store_view(store_id)
            if view is not None:
                website_id, store_code = website_id or view.website_id, store_code or view.code
        document = dataclasses.replace(document, store_id=store_id, website_id=website_id, store_code=store_code)

    if need & PRODUCT_FACTS:
        document = dataclasses.replace(
            document, lines=tuple(_line_enrich(line, need, facts) for line in document.lines)
        )
    return document


def _line_enrich(line: SalesLine, need: set[str], facts: _Facts) -> SalesLine:
    wants_set = "attribute_set" in need and not line.attribute_set_id
    wants_categories = "category" in need and not line.category_ids
    if not (wants_set or wants_categories) or not line.sku:
        return line
    found = facts.product(line.sku)
    attribute_set_id = line.attribute_set_id or (found.attribute_set_id if found is not None else "")
    category_ids = line.category_ids or (found.category_ids if found is not None else ())
    if wants_categories and not category_ids and line.parent_sku:
        # The simple product behind a configurable one is usually in no category of its own: its parent is.
        parent = facts.product(line.parent_sku)
        category_ids = parent.category_ids if parent is not None else ()
    return dataclasses.replace(line, attribute_set_id=attribute_set_id, category_ids=category_ids)


def _filled(before: SalesDocument, after: SalesDocument) -> dict[str, Any]:
    """What enrichment added, for the audit trail."""
    filled: dict[str, Any] = {
        name: getattr(after, name)
        for name in ("store_id", "website_id", "store_code")
        if getattr(after, name) != getattr(before, name)
    }
    lines = {}
    for old, new in zip(before.lines, after.lines, strict=True):
        if old != new:
            lines[new.line_id or new.sku] = {
                "sku": new.sku,
                "attribute_set_id": new.attribute_set_id,
                "category_ids": list(new.category_ids),
            }
    if lines:
        filled["lines"] = lines
    return filled


def record_enrich(
    *,
    record: Record,
    order: SalesDocument | None = None,
    client: CommerceClient | None = None,
    actor: Any = "system:worker",
) -> SalesDocument:
    """Enrich the record's document (an invoice or credit memo with its `order`, else its order's record) and
    keep the result on the record, audited, so the plan preview resolves the same document as the posting."""
    document = SalesDocument.from_json(record.document)
    if order is None and record.kind != Record.Kind.ORDER:
        order = order_of(record)
    enriched = document_enrich(document=document, connection=record.connection, client=client, order=order)
    if enriched == document:
        return document
    filled = _filled(document, enriched)
    data = enriched.to_json()
    with transaction.atomic():
        Record.objects.filter(pk=record.pk).update(document=data)
        audit_record(
            action="record.enriched",
            actor=actor,
            connection=record.connection_id,
            target=record,
            message="Filled in from Commerce for the mapping rules: " + _describe(filled),
            data={"filled": filled},
        )
    record.document = data
    return enriched


def _describe(filled: dict[str, Any]) -> str:
    parts = [
        f"{name.replace('_', ' ')} {filled[name]}"
        for name in ("store_id", "website_id", "store_code")
        if name in filled
    ]
    for line in filled.get("lines", {}).values():
        categories = ", ".join(line["category_ids"]) or "none"
        parts.append(
            f"SKU {line['sku']} attribute set {line['attribute_set_id'] or 'unknown'}, categories {categories}"
        )
    return "; ".join(parts)
