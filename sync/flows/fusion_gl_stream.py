"""The GL assignments stream of the sync from Fusion: when the mapping rules change, the Commerce customers and
products they concern get their GL attribute rewritten, without reading Fusion.

Every link keeps the rules version its values were computed with (fusion_gl). A run takes the links whose version
is not today's, recomputes their values from the Fusion data and Commerce facts kept on them, and writes only where
the GL value really changed (a rule for LAP-* touches only those products); the rest just take the new version. A
run with no rule change reads nothing, calls nothing and writes nothing (its watermark, when the last sweep
that had links to redo finished, stays). The customer rules the sync keeps get the new segment
values too."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import SyncLink
from .fusion_customers import CustomerSide, synced_rule_ensure
from .fusion_gl import gl_rules
from .fusion_items import ProductSide
from .fusion_links import Source, process_batch
from .fusion_runs import BATCH_SIZE, Run, chunked


def gl_run(run: Run) -> None:
    rules = gl_rules(run.connection)
    sides = (CustomerSide(run, rules), ProductSide(run, rules))
    swept = False
    for side in sides:
        stale = (
            SyncLink.objects.filter(
                connection=run.connection,
                kind=side.kind,
                state__in=(SyncLink.State.LINKED, SyncLink.State.INACTIVE),
            )
            .exclude(rules_version=side.rules_version)
            .order_by("pk")
        )
        for batch in chunked(stale.iterator(chunk_size=BATCH_SIZE), BATCH_SIZE):
            swept = True
            sources = {link.fusion_key: Source.from_json(link.fusion_data) for link in batch}
            with transaction.atomic():  # one commit per batch
                process_batch(run, side, list(sources.values()), from_fusion=False)
                if isinstance(side, CustomerSide):
                    for link in batch:
                        synced_rule_ensure(run, rules, link, sources[link.fusion_key])
            run.note("batch")
            if run.out_of_time():
                run.partial = True
                return
    if swept:
        run.advance_watermark(timezone.now())
