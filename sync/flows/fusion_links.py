"""Fusion records onto Commerce entities, for both streams: find the Commerce match of a new record, work out the
attribute values it should carry, compare them with what the sync last wrote there (no call at all when equal)
or with Commerce's current values, write only the attributes that differ, and keep the outcome on the record's
link. A record that fails keeps its Fusion data and reason on its link and is tried again on the next run.

Each stream gives a `Side`: how its Commerce entities are found, read, written and created."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from core.errors import ConnectorError

from ..models import SyncLink
from .fusion_runs import Run


@dataclass(frozen=True)
class Source:
    """A Fusion record as the sync handles it: its key (AccountNumber, ItemId), the value it is matched by in
    Commerce, the attributes the settings map from (as text) and what a created entity needs."""

    key: str
    label: str
    match: str
    values: Mapping[str, str]
    updated_at: datetime | None = None
    active: bool = True
    name: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. the bill-to site use id of a customer

    @property
    def digest(self) -> str:
        text = json.dumps(self.as_json(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["values"], data["extra"] = dict(self.values), dict(self.extra)
        data["updated_at"] = self.updated_at.isoformat() if self.updated_at else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Source:
        stamp = data.get("updated_at")
        return cls(
            key=str(data.get("key") or ""),
            label=str(data.get("label") or ""),
            match=str(data.get("match") or ""),
            values=dict(data.get("values") or {}),
            updated_at=datetime.fromisoformat(stamp) if stamp else None,
            active=bool(data.get("active", True)),
            name=str(data.get("name") or ""),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True)
class Target:
    """A Commerce entity as read: its id (customer id, SKU), custom attributes as text, the facts the GL rules
    match on, and the entity itself for the side's write."""

    id: str
    attributes: Mapping[str, str]
    facts: Mapping[str, Any]
    entity: Any = None


class Side(Protocol):
    kind: str  # SyncLink.Kind
    target_type: str  # audit: commerce.customer, commerce.product
    rules_version: str

    def find(self, sources: list[Source]) -> dict[str, list[Target] | ConnectorError]:
        """Commerce entities matching each source, by `source.match` (or why the look-up failed)."""

    def current(self, links: list[SyncLink]) -> dict[str, Target | ConnectorError]:
        """Commerce's current entity of each link (by commerce id), or why it could not be read, when the side
        must read before writing (or in a full run); {} when a write can go on what the sync last wrote."""

    def desired(self, source: Source, commerce_id: str, facts: Mapping[str, Any]) -> dict[str, str]: ...

    def write(self, target: Target | None, commerce_id: str, changes: dict[str, str]) -> None: ...

    def create(self, source: Source) -> Target | None:
        """Create the Commerce entity (None when creation is off or not possible for this record)."""

    def linked(self, link: SyncLink, source: Source) -> None:
        """After a pair is settled (customers: the synced customer rule)."""


def process_batch(run: Run, side: Side, sources: list[Source], *, from_fusion: bool = True) -> None:
    """Settle every source of the batch: each ends written, unchanged, unmatched or failed (kept for retry)."""
    links: dict[str, list[SyncLink]] = {}
    for link in SyncLink.objects.filter(
        connection=run.connection, kind=side.kind, fusion_key__in=[s.key for s in sources]
    ):
        links.setdefault(link.fusion_key, []).append(link)
    to_match: list[Source] = []
    pairs: list[tuple[Source, SyncLink]] = []
    for source in sources:
        if from_fusion:
            run.counts.read += 1
        mine = links.get(source.key, [])
        linked = [link for link in mine if link.commerce_id]
        if linked:
            pairs.extend((source, link) for link in linked)
            _drop_unmatched(run, mine)
        elif _still_unmatched(run, source, mine):
            run.counts.unmatched += 1
        else:
            to_match.append(source)
    if to_match:
        _match(run, side, to_match, links)
    if pairs:
        _settle_pairs(run, side, pairs)
    run.flush()


def _still_unmatched(run: Run, source: Source, links: list[SyncLink]) -> bool:
    """A record already known to have no match, unchanged since: Commerce is not asked again (a full run asks)."""
    return (
        not run.full
        and len(links) == 1
        and links[0].state == SyncLink.State.UNMATCHED
        and links[0].fusion_hash == source.digest
    )


def _drop_unmatched(run: Run, links: list[SyncLink]) -> None:
    stale = [link.pk for link in links if not link.commerce_id]
    if stale and not run.dry_run:
        SyncLink.objects.filter(pk__in=stale).delete()


def _match(run: Run, side: Side, sources: list[Source], links: dict[str, list[SyncLink]]) -> None:
    try:
        found = run.call(lambda: side.find(sources), idempotent=True)
    except ConnectorError as exc:
        for source in sources:
            _fail(run, side, source, _placeholder(run, side, source, links), exc)
        return
    jobs: list[tuple[Source, SyncLink, Target | None]] = []
    for source in sources:
        targets = found.get(source.match, [])
        if isinstance(targets, ConnectorError):
            _fail(run, side, source, _placeholder(run, side, source, links), targets)
            continue
        if not targets:
            _unmatched(run, side, source, links)
            continue
        jobs.extend((source, _new_link(run, side, source, target.id), target) for target in targets)
        _drop_unmatched(run, links.get(source.key, []))
    _settle_all(run, side, jobs)


def _unmatched(run: Run, side: Side, source: Source, links: dict[str, list[SyncLink]]) -> None:
    placeholder = _placeholder(run, side, source, links)
    try:
        target = run.call(lambda: side.create(source), idempotent=False) if source.active else None
    except ConnectorError as exc:
        _fail(run, side, source, placeholder, exc)
        return
    if target is None:
        run.counts.unmatched += 1
        run.note("unmatched", kind=side.kind, key=source.key, label=source.label, match=source.match)
        _save(run, placeholder, source, state=SyncLink.State.UNMATCHED, error="")
        return
    run.counts.created += 1
    run.counts.written += 1
    run.note("created", kind=side.kind, key=source.key, label=source.label, commerce_id=target.id)
    run.audit_write(
        action=f"{side.kind}_created",
        target_type=side.target_type,
        target_id=target.id,
        before={},
        after=dict(target.attributes),
        fusion_key=source.key,
    )
    if not run.dry_run and placeholder.pk:
        placeholder.delete()
    link = _new_link(run, side, source, target.id)
    link.facts = dict(target.facts)
    _save(run, link, source, state=_state_of(source), written=dict(target.attributes), version=side.rules_version)
    side.linked(link, source)


def _placeholder(run: Run, side: Side, source: Source, links: dict[str, list[SyncLink]]) -> SyncLink:
    """The record's link without a Commerce entity (unmatched, or failed before a match was known)."""
    for link in links.get(source.key, []):
        if not link.commerce_id:
            return link
    return _new_link(run, side, source, "")


def _new_link(run: Run, side: Side, source: Source, commerce_id: str) -> SyncLink:
    return SyncLink(
        connection=run.connection,
        kind=side.kind,
        fusion_key=source.key,
        fusion_label=source.label[:300],
        commerce_id=commerce_id,
        state=SyncLink.State.LINKED,
    )


def _settle_pairs(run: Run, side: Side, pairs: list[tuple[Source, SyncLink]]) -> None:
    """Linked pairs: no Commerce call when the values are what the sync last wrote; else read (when the side must)
    and write what differs."""
    due: list[tuple[Source, SyncLink]] = []
    for source, link in pairs:
        desired = side.desired(source, link.commerce_id, link.facts)
        settled = link.state in (SyncLink.State.LINKED, SyncLink.State.INACTIVE)
        if not run.full and settled and desired == link.written:
            _unchanged(run, side, link, source, desired)
        else:
            due.append((source, link))
    if not due:
        return
    try:
        current = run.call(lambda: side.current([link for _, link in due]), idempotent=True)
    except ConnectorError as exc:
        for source, link in due:
            _fail(run, side, source, link, exc)
        return
    jobs: list[tuple[Source, SyncLink, Target | None]] = []
    for source, link in due:
        found = current.get(link.commerce_id)
        if isinstance(found, ConnectorError):
            _fail(run, side, source, link, found)
        else:
            jobs.append((source, link, found))
    _settle_all(run, side, jobs)


@dataclass
class _Write:
    source: Source
    link: SyncLink
    target: Target | None
    desired: dict[str, str]
    before: dict[str, str]
    changes: dict[str, str]


def _settle_all(run: Run, side: Side, jobs: list[tuple[Source, SyncLink, Target | None]]) -> None:
    """Compare with Commerce's current values when read (else with what the sync last wrote) and write what
    differs: only changed attributes, never a value Commerce already holds. The writes of a batch go out a few at
    a time (Run.write_all); their outcomes are kept here, one by one."""
    writes: list[_Write] = []
    for source, link, target in jobs:
        facts = dict(target.facts) if target is not None else dict(link.facts)
        desired = side.desired(source, link.commerce_id, facts)
        before = dict(target.attributes) if target is not None else dict(link.written)
        changes = {code: value for code, value in desired.items() if before.get(code, "") != value}
        link.facts = facts
        if changes:
            writes.append(_Write(source, link, target, desired, before, changes))
        else:
            _unchanged(run, side, link, source, desired)
            side.linked(link, source)
    errors = run.write_all([partial(side.write, w.target, w.link.commerce_id, w.changes) for w in writes])
    for write, error in zip(writes, errors, strict=True):
        if error is not None:
            _fail(run, side, write.source, write.link, error)
        else:
            _written(run, side, write)


def _written(run: Run, side: Side, write: _Write) -> None:
    source, link = write.source, write.link
    run.counts.written += 1
    old = {code: write.before.get(code, "") for code in write.changes}
    run.note(
        "written",
        kind=side.kind,
        key=source.key,
        label=source.label,
        commerce_id=link.commerce_id,
        before=old,
        after=write.changes,
    )
    run.audit_write(
        action=f"{side.kind}_updated",
        target_type=side.target_type,
        target_id=link.commerce_id,
        before=old,
        after=write.changes,
        fusion_key=source.key,
    )
    _save(run, link, source, state=_state_of(source), written=write.desired, version=side.rules_version)
    _report_inactive(run, source)
    side.linked(link, source)


def _unchanged(run: Run, side: Side, link: SyncLink, source: Source, desired: dict[str, str]) -> None:
    run.counts.unchanged += 1
    _report_inactive(run, source)
    state = _state_of(source)
    if (
        link.pk
        and link.state == state
        and link.fusion_hash == source.digest
        and link.written == desired
        and link.rules_version == side.rules_version
    ):
        return  # nothing new to keep: no database write either
    _save(run, link, source, state=state, written=desired, version=side.rules_version)


def _report_inactive(run: Run, source: Source) -> None:
    if not source.active:
        run.counts.inactive += 1
        run.note("inactive", key=source.key, label=source.label)


def _state_of(source: Source) -> str:
    return SyncLink.State.LINKED if source.active else SyncLink.State.INACTIVE


def _fail(run: Run, side: Side, source: Source, link: SyncLink, exc: ConnectorError) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    run.note("failed", kind=side.kind, key=source.key, label=source.label, commerce_id=link.commerce_id, error=reason)
    link.attempts += 1
    _save(run, link, source, state=SyncLink.State.FAILED, error=reason[:4000])
    run.record_failure(exc)


def _save(
    run: Run,
    link: SyncLink,
    source: Source,
    *,
    state: str,
    written: dict[str, str] | None = None,
    error: str = "",
    version: str = "",
) -> None:
    """Keep the outcome on the link (nothing on a dry run). `written` (with the rules `version` it was computed
    with) replaces what the sync last wrote; a failure keeps it."""
    if run.dry_run:
        return
    link.state = state
    link.fusion_label = source.label[:300]
    link.fusion_data = source.as_json()
    link.fusion_hash = source.digest
    link.fusion_updated_at = source.updated_at
    link.last_error = error
    if state != SyncLink.State.FAILED:
        link.attempts = 0
    if written is not None:
        link.written = written
        link.rules_version = version
    link.seen_at = run.started_at
    run.keep(link)
