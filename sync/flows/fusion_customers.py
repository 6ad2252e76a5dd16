"""The customers stream of the sync from Fusion: Fusion customer accounts and their bill-to sites onto Commerce
customers.

customerAccountSitesLOV documents no change timestamp, so every run reads all of it (one request per 500 sites)
and compares by content: an account whose attribute values equal what the sync last wrote costs no Commerce call.
An account is matched to the Commerce customers whose configured attribute holds its account number (or whose
email is the account's, when a Fusion attribute holds one); its primary bill-to site (else its first) gives the
site values. Each linked Commerce customer becomes a customer rule marked "synced from Fusion" (bill-to account
and site, with the segment values the other rules give it). An account gone from Fusion is reported, never
deleted in Commerce; a new one gets a Commerce customer only when the settings say so."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from commerce.entities import CommerceCustomer, attribute_list
from core.errors import ConnectorError
from fusion.sources import CustomerSite
from mappings.models import CustomerRule
from mappings.services import rule_save

from ..models import FusionSyncSettings, SyncLink
from .fusion_gl import GlRules, gl_rules
from .fusion_links import Source, Target, process_batch
from .fusion_runs import BATCH_SIZE, Run, chunked

TARGET_TYPE = "commerce.customer"


def account_source(sites: list[CustomerSite], settings: FusionSyncSettings) -> Source:
    """An account from its sites: the primary bill-to site's values (else the first site's); the content hash
    covers every site, so any site's change is seen."""
    primary = next((site for site in sites if site.primary), sites[0])
    match = (
        primary.values.get(settings.customer_email_field, "").strip().lower()
        if settings.customer_match == FusionSyncSettings.CustomerMatch.EMAIL
        else primary.account_number
    )
    others = ";".join(f"{s.site_use_id}:{sorted(s.values.items())}" for s in sites if s is not primary)
    return Source(
        key=primary.account_number,
        label=primary.customer_name,
        match=match,
        values=dict(primary.values),
        name=primary.customer_name,
        extra={
            "site_use_id": primary.site_use_id,
            "other_sites": hashlib.sha256(others.encode()).hexdigest()[:16] if others else "",
        },
    )


def accounts(sites: Iterable[CustomerSite]) -> Iterator[list[CustomerSite]]:
    """Consecutive sites of one account together (Fusion sorts them by account number)."""
    for _, group in itertools.groupby(sites, key=lambda site: site.account_number):
        yield list(group)


class CustomerSide:
    kind: str = SyncLink.Kind.CUSTOMER
    target_type = TARGET_TYPE

    def __init__(self, run: Run, rules: GlRules) -> None:
        self.run = run
        self.settings = run.settings
        self.rules = rules
        self.rules_version = rules.customer_version

    def _target(self, customer: CommerceCustomer) -> Target:
        return Target(id=customer.id, attributes=dict(customer.attributes), facts=customer.facts, entity=customer)

    def find(self, sources: list[Source]) -> dict[str, list[Target] | ConnectorError]:
        """One search per account (by the attribute or the email), then each customer read by id: a search may
        leave custom attributes out. An account whose look-up fails carries its error."""
        email = self.settings.customer_match == FusionSyncSettings.CustomerMatch.EMAIL
        field = "email" if email else self.settings.customer_match_attribute
        commerce = self.run.commerce
        found: dict[str, list[Target] | ConnectorError] = {}
        for source in sources:
            if not source.match:
                continue
            try:
                ids = self.run.call(partial(commerce.customer_ids_where, field, source.match), idempotent=True)
                found[source.match] = [
                    self._target(self.run.call(partial(commerce.customer, i), idempotent=True)) for i in ids
                ]
            except ConnectorError as exc:
                found[source.match] = exc
        return found

    def current(self, links: list[SyncLink]) -> dict[str, Target | ConnectorError]:
        """A customer PUT sends the stored customer back: read each one first."""
        current: dict[str, Target | ConnectorError] = {}
        for link in links:
            try:
                customer = self.run.call(partial(self.run.commerce.customer, link.commerce_id), idempotent=True)
            except ConnectorError as exc:
                current[link.commerce_id] = exc
            else:
                current[link.commerce_id] = self._target(customer)
        return current

    def desired(self, source: Source, commerce_id: str, facts: Mapping[str, Any]) -> dict[str, str]:
        values = {code: source.values.get(name, "") for code, name in (self.settings.customer_attributes or {}).items()}
        if self.settings.customer_gl_attribute:
            values[self.settings.customer_gl_attribute] = self.rules.customer_gl(commerce_id, facts)
        return values

    def write(self, target: Target | None, commerce_id: str, changes: dict[str, str]) -> None:
        if self.run.dry_run:
            return
        customer = target.entity if target is not None else self.run.commerce.customer(commerce_id)
        self.run.commerce.update_customer_attributes(customer, changes)

    def create(self, source: Source) -> Target | None:
        """A customer for an unmatched account, when the settings ask for it (email matching gives the email)."""
        if not (self.settings.customer_create_missing and source.match and "@" in source.match):
            return None
        first, _, last = (source.name or source.label or source.key).partition(" ")
        desired = self.desired(source, "", {"email": source.match})
        payload = {
            "email": source.match,
            "firstname": first or source.key,
            "lastname": last or first or source.key,
            "website_id": self.settings.customer_website_id,
            "custom_attributes": attribute_list(desired),
        }
        if self.run.dry_run:
            return Target(id="(new)", attributes=desired, facts={"email": source.match})
        created = CommerceCustomer.from_answer(self.run.commerce.create_customer(payload))
        return Target(id=created.id, attributes=desired, facts=created.facts, entity=created)

    def linked(self, link: SyncLink, source: Source) -> None:
        synced_rule_ensure(self.run, self.rules, link, source)


def synced_rule_ensure(run: Run, rules: GlRules, link: SyncLink, source: Source) -> None:
    """The customer rule of a linked Commerce customer: its Fusion account and bill-to site, and the segment values
    the other customer rules give it. A rule a person keeps for that customer is left alone."""
    if run.dry_run or not link.commerce_id or link.state == SyncLink.State.FAILED:
        return
    rules_of_customer = CustomerRule.objects.filter(
        connection=run.connection, match_type=CustomerRule.MatchType.CUSTOMER_ID, match_value__iexact=link.commerce_id
    )
    if rules_of_customer.filter(synced_from_fusion=False).exists():
        return
    rule = rules_of_customer.filter(synced_from_fusion=True).first() or CustomerRule(
        connection=run.connection,
        match_type=CustomerRule.MatchType.CUSTOMER_ID,
        match_value=link.commerce_id,
        synced_from_fusion=True,
    )
    site, segments = source.extra.get("site_use_id", ""), rules.customer_segments(link.commerce_id, link.facts)
    if rule.pk and (rule.bill_to_customer_number, rule.bill_to_site, rule.segments) == (source.key, site, segments):
        return  # as it should be: no validation, no save
    rule.bill_to_customer_number, rule.bill_to_site, rule.segments = source.key, site, segments
    rule.notes = rule.notes or f"Kept by the sync from Fusion (account {source.key}, {source.label})."[:500]
    try:
        rule_save(rule=rule, actor=run.actor, via="fusion sync")
    except ValidationError as exc:
        run.note("rule_skipped", key=source.key, commerce_id=link.commerce_id, error="; ".join(exc.messages))


def customers_run(run: Run) -> None:
    """Read every account, settle each batch; after a complete read, report the linked accounts Fusion no longer
    returns. The watermark (when the last complete read began) moves only with a read that changed something:
    a read that confirms nothing changed writes nothing."""
    settings = run.settings
    side = CustomerSide(run, gl_rules(run.connection))
    fields = tuple(dict.fromkeys([*(settings.customer_attributes or {}).values(), settings.customer_email_field]))
    sites = run.fusion.customer_sites(fields=tuple(f for f in fields if f))
    complete = True
    seen: set[str] = set()
    for batch in chunked(accounts(sites), max(1, BATCH_SIZE // 2)):
        sources = [account_source(group, settings) for group in batch]
        with transaction.atomic():  # one commit per batch
            process_batch(run, side, sources)
        seen.update(s.key for s in sources)
        run.note("batch")
        if run.out_of_time():
            run.partial, complete = True, False
            break
    if complete:
        _report_missing(run, seen)
        if run.did_something():
            run.advance_watermark(run.started_at)


def _report_missing(run: Run, seen: set[str]) -> None:
    """Linked accounts the complete read did not return (`seen` holds those it did): asked for once more by
    number (a row can slip between pages while Fusion changes), then reported as missing. Nothing is deleted in
    Commerce."""
    linked = (
        SyncLink.objects.filter(connection=run.connection, kind=SyncLink.Kind.CUSTOMER, created_at__lt=run.started_at)
        .exclude(state=SyncLink.State.MISSING)
        .values_list("fusion_key", flat=True)
        .distinct()
    )
    unseen = [key for key in linked.iterator() if key not in seen]
    for key in unseen:
        try:
            still_there = next(iter(run.fusion.customer_sites(account_number=key)), None) is not None
        except ConnectorError as exc:
            run.note("failed", kind="customer", key=key, label="", commerce_id="", error=str(exc))
            continue
        if still_there:
            continue
        run.counts.missing += 1
        run.note("missing", kind="customer", key=key)
        if not run.dry_run:
            SyncLink.objects.filter(connection=run.connection, kind=SyncLink.Kind.CUSTOMER, fusion_key=key).update(
                state=SyncLink.State.MISSING, last_error="No longer returned by Fusion (customerAccountSitesLOV)."
            )
            run.audit_write(
                action="customer_missing",
                target_type="fusion.customer_account",
                target_id=key,
                before={},
                after={},
                fusion_key=key,
            )
