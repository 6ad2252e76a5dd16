"""The items stream of the sync from Fusion: itemsV2 items of the item master organisation onto Commerce products.

Incremental: the items stamped (LastUpdateDateTime, or LastUpdateDate, per the settings) at or after the watermark
less an overlap, oldest first, keyset-paged. The watermark is saved after every batch, and only up to items whose
outcome is kept: written, unchanged, unmatched, or failed with its Fusion data and reason on its link (a failed
item is tried again at the end of every later run, until it goes through or changes in Fusion). An item is
matched to the product whose SKU is its ItemNumber (or whose configured attribute holds it); product writes go
to the global scope (`/rest/all/V1` on PaaS) and carry only the attributes that changed. An item inactive in
Fusion is reported and its status written, never disabled or deleted in Commerce; a full run also reports the
linked items Fusion no longer returns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction

from commerce.entities import CommerceProduct, attribute_list
from core.errors import ConnectorError, NotFoundError
from fusion.sources import FusionItem

from ..models import SyncLink
from .fusion_gl import GlRules, gl_rules
from .fusion_links import Source, Target, process_batch
from .fusion_runs import BATCH_SIZE, NotConfigured, Run, chunked, configuration_problem

TARGET_TYPE = "commerce.product"


def item_source(item: FusionItem) -> Source:
    return Source(
        key=item.item_id,
        label=item.item_number,
        match=item.item_number,
        values=dict(item.values),
        updated_at=item.updated_at,
        active=item.active,
        name=item.description,
    )


class ProductSide:
    kind: str = SyncLink.Kind.PRODUCT
    target_type = TARGET_TYPE

    def __init__(self, run: Run, rules: GlRules) -> None:
        self.run = run
        self.settings = run.settings
        self.rules = rules
        self.rules_version = rules.product_version
        self.field = self.settings.item_match_attribute or "sku"

    @staticmethod
    def _target(product: CommerceProduct) -> Target:
        return Target(id=product.sku, attributes=dict(product.attributes), facts=product.facts, entity=product)

    def find(self, sources: list[Source]) -> dict[str, list[Target] | ConnectorError]:
        """One search per hundred items (an `in` filter on the SKU or the attribute): a product search returns the
        custom attributes."""
        products = self.run.commerce.products_where(self.field, [s.match for s in sources if s.match])
        found: dict[str, list[Target] | ConnectorError] = {}
        for product in products:
            value = product.sku if self.field == "sku" else product.attributes.get(self.field, "")
            targets = found.setdefault(value, [])
            if isinstance(targets, list):
                targets.append(self._target(product))
        return found

    def current(self, links: list[SyncLink]) -> dict[str, Target | ConnectorError]:
        """A product PUT keeps what it does not send: read nothing, compare with what the sync last wrote. A full
        run compares with the products as they are now."""
        if not self.run.full:
            return {}
        products = self.run.commerce.products_where("sku", [link.commerce_id for link in links])
        current: dict[str, Target | ConnectorError] = {p.sku: self._target(p) for p in products}
        for link in links:
            current.setdefault(link.commerce_id, NotFoundError(f"Commerce has no product {link.commerce_id} now"))
        return current

    def desired(self, source: Source, commerce_id: str, facts: Mapping[str, Any]) -> dict[str, str]:
        values = {code: source.values.get(name, "") for code, name in (self.settings.item_attributes or {}).items()}
        if self.settings.item_gl_attribute:
            values[self.settings.item_gl_attribute] = self.rules.product_gl(commerce_id, facts)
        return values

    def write(self, target: Target | None, commerce_id: str, changes: dict[str, str]) -> None:
        if not self.run.dry_run:
            self.run.commerce.update_product_attributes(commerce_id, changes)

    def create(self, source: Source) -> Target | None:
        """A disabled, not visible simple product for an unmatched item, when the settings ask for it."""
        if not self.settings.item_create_missing:
            return None
        sku = source.values.get("ItemNumber") or source.match
        facts = {"attribute_set_id": str(self.settings.item_attribute_set_id), "category_ids": []}
        desired = self.desired(source, sku, facts)
        payload = {
            "sku": sku,
            "name": source.name or sku,
            "attribute_set_id": self.settings.item_attribute_set_id,
            "price": 0,
            "status": 2,  # disabled
            "visibility": 1,  # not visible individually
            "type_id": "simple",
            "custom_attributes": attribute_list(desired),
        }
        if self.run.dry_run:
            return Target(id=sku, attributes=desired, facts=facts)
        created = CommerceProduct.from_answer(self.run.commerce.create_product(payload))
        return Target(id=created.sku, attributes=desired, facts=created.facts, entity=created)

    def linked(self, link: SyncLink, source: Source) -> None:
        return None


def items_run(run: Run) -> None:
    settings = run.settings
    problem = configuration_problem(settings, run.stream)
    if problem:
        raise NotConfigured(problem)
    side = ProductSide(run, gl_rules(run.connection))
    stream = run.stream_row()
    overlap = timedelta(seconds=django_settings.CONNECTOR_FUSION_SYNC_OVERLAP_SECONDS)
    since = None if run.full or stream.watermark is None else stream.watermark - overlap
    items = run.fusion.item_changes(
        organization=settings.item_organization,
        stamp=settings.item_timestamp_field,
        since=since,
        fields=tuple((settings.item_attributes or {}).values()),
    )
    complete = True
    for batch in chunked(items, BATCH_SIZE):
        sources = [item_source(item) for item in batch]
        # One transaction per batch: its links and the watermark past it are kept together (a run that dies
        # mid-batch reads the batch again, and its writes of the same values are harmless), in one commit.
        with transaction.atomic():
            process_batch(run, side, sources)
            if run.full and not run.dry_run:
                SyncLink.objects.filter(
                    connection=run.connection, kind=SyncLink.Kind.PRODUCT, fusion_key__in=[s.key for s in sources]
                ).update(seen_at=run.started_at)
            stamps = [s.updated_at for s in sources if s.updated_at is not None]
            run.advance_watermark(max(stamps) if stamps else None)
        run.note("batch")
        if run.out_of_time():
            run.partial, complete = True, False
            break
    _retry_failed(run, side)
    if run.full and complete:
        _report_missing(run)


def _retry_failed(run: Run, side: ProductSide) -> None:
    """Items that failed on an earlier run and did not come again in this one: tried again from the Fusion data
    kept on their link."""
    failed = SyncLink.objects.filter(
        connection=run.connection,
        kind=SyncLink.Kind.PRODUCT,
        state=SyncLink.State.FAILED,
        updated_at__lt=run.started_at,
    ).order_by("pk")
    keys = list(dict.fromkeys(failed.values_list("fusion_key", flat=True)))
    for chunk in chunked(keys, BATCH_SIZE):
        data = dict(
            SyncLink.objects.filter(
                connection=run.connection, kind=SyncLink.Kind.PRODUCT, fusion_key__in=chunk
            ).values_list("fusion_key", "fusion_data")
        )
        sources = [Source.from_json(data[key]) for key in chunk if data.get(key)]
        if sources:
            run.note("retry", count=len(sources))
            with transaction.atomic():
                process_batch(run, side, sources, from_fusion=False)


def _report_missing(run: Run) -> None:
    """After a complete (full) read: the linked items Fusion did not return, asked for once more by number, then
    reported as missing. Nothing is disabled or deleted in Commerce."""
    settings = run.settings
    unseen = (
        SyncLink.objects.filter(connection=run.connection, kind=SyncLink.Kind.PRODUCT, created_at__lt=run.started_at)
        .exclude(state=SyncLink.State.MISSING)
        .exclude(seen_at__gte=run.started_at)
        .values_list("fusion_key", "fusion_label")
        .distinct()
    )
    for key, number in list(unseen.iterator()):
        try:
            found = run.fusion.items_numbered(
                organization=settings.item_organization, item_number=number, stamp=settings.item_timestamp_field
            )
        except ConnectorError as exc:
            run.note("failed", kind="product", key=key, label=number, commerce_id="", error=str(exc))
            continue
        if found:
            continue
        run.counts.missing += 1
        run.note("missing", kind="product", key=key, label=number)
        if not run.dry_run:
            SyncLink.objects.filter(connection=run.connection, kind=SyncLink.Kind.PRODUCT, fusion_key=key).update(
                state=SyncLink.State.MISSING, last_error="No longer returned by Fusion (itemsV2)."
            )
            run.audit_write(
                action="product_missing",
                target_type="fusion.item",
                target_id=number,
                before={},
                after={},
                fusion_key=key,
            )
