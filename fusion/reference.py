"""Fusion reference data the posting relies on: customer accounts with their bill-to sites, and GL account
combinations. Cached locally, refreshed on the beat schedule, fetched on a miss before posting. Nothing is
posted to a disabled, end-dated or unknown combination or customer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from connector.models import Connection

from .client import FusionApi
from .models import AccountCombination, CustomerAccount, ReferenceStatus
from .query import q_expr

logger = logging.getLogger(__name__)
CUSTOMER_FIELDS = "AccountNumber,SiteUseId,SiteName,CustomerName,CustomerAccountId,PartyNumber"
MAX_CACHE_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class ReferenceProblem:
    code: str
    message: str
    resolution: str


def _date(value) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)[:10]).date()


def _flag(value) -> bool:
    return value in (True, "Y", "y", "true", "True", 1)


def _combination_of(row: dict, segment_names: Sequence[str], delimiter: str) -> str:
    values = [row.get(name) for name in segment_names]
    if not segment_names or any(v in (None, "") for v in values):
        return ""
    return delimiter.join(str(v) for v in values)


COMBINATION_FIELDS = (
    "code_combination_id",
    "enabled",
    "start_date",
    "end_date",
    "detail_posting_allowed",
    "account_type",
)
SITE_FIELDS = ("site_use_id", "site_name", "customer_name", "customer_account_id", "party_number", "active")
CHECKED_KEY = "fusion-reference:checked:{connection_id}:{kind}"  # when a complete refresh last confirmed the rows


def _combination_values(row: dict) -> dict:
    return {
        "code_combination_id": str(row.get("_CODE_COMBINATION_ID") or ""),
        "enabled": _flag(row.get("EnabledFlag", "Y")),
        "start_date": _date(row.get("StartDateActive")),
        "end_date": _date(row.get("EndDateActive")),
        "detail_posting_allowed": _flag(row.get("DetailPostingAllowedFlag", "Y")),
        "account_type": str(row.get("AccountType") or "")[:4],
    }


def _store_combination(connection: Connection, row: dict, combination: str) -> AccountCombination:
    obj, _ = AccountCombination.objects.update_or_create(
        connection=connection, combination=combination, defaults=_combination_values(row)
    )
    return obj


def _site_values(row: dict) -> tuple[str, dict, set[str]]:
    """A customerAccountSitesLOV row: its account number, its values, and the keys it is findable by (its
    SiteUseId and its site name: BillToSite takes either)."""
    values: dict[str, Any] = {
        "site_use_id": str(row.get("SiteUseId") or ""),
        "site_name": str(row.get("SiteName") or ""),
        "customer_name": str(row.get("CustomerName") or ""),
        "customer_account_id": str(row.get("CustomerAccountId") or ""),
        "party_number": str(row.get("PartyNumber") or ""),
        "active": True,
    }
    keys = {str(values["site_use_id"]), str(values["site_name"])} - {""}
    return str(row.get("AccountNumber") or ""), values, keys


def _store_site(connection: Connection, row: dict) -> list[CustomerAccount]:
    number, defaults, sites = _site_values(row)
    if not number:
        return []
    stored = []
    for site in sites:
        obj, _ = CustomerAccount.objects.update_or_create(
            connection=connection, account_number=number, site=site, defaults=defaults
        )
        stored.append(obj)
    return stored


class _Changes:
    """The cached rows of one kind against what a complete read returns: only new, changed and vanished rows are
    written, so a refresh that finds Fusion unchanged writes nothing."""

    def __init__(self, existing: dict, fields: tuple[str, ...]) -> None:
        self.existing = existing
        self.fields = fields
        self.new: dict = {}
        self.changed: dict[int, Any] = {}
        self.seen: set = set()

    def take(self, key: Any, values: dict, make: Callable[[], Any]) -> None:
        self.seen.add(key)
        obj = self.existing.get(key)
        if obj is None:
            obj = self.new.get(key) or make()
            self.new[key] = obj
        elif any(getattr(obj, name) != value for name, value in values.items()):
            self.changed[obj.pk] = obj
        for name, value in values.items():
            setattr(obj, name, value)

    def gone(self, flag: str) -> list[int]:
        """The cached rows the read did not return and that are still active (enabled)."""
        return [obj.pk for key, obj in self.existing.items() if key not in self.seen and getattr(obj, flag)]

    def save(self, model: type[CustomerAccount] | type[AccountCombination], *, flag: str, started: datetime) -> int:
        now = timezone.now()
        for obj in self.changed.values():
            obj.fetched_at = now
        model.objects.bulk_create(list(self.new.values()), batch_size=500, ignore_conflicts=True)
        model.objects.bulk_update(list(self.changed.values()), [*self.fields, "fetched_at"], batch_size=500)
        gone = self.gone(flag)
        if gone:  # not those a lookup fetched since the read began
            model.objects.filter(pk__in=gone, fetched_at__lt=started).update(**{flag: False})
        return len(self.new) + len(self.changed) + len(gone)


def _refresh_sites(connection: Connection, client: FusionApi, started: datetime) -> tuple[int, int]:
    cached = CustomerAccount.objects.filter(connection=connection)
    changes = _Changes({(a.account_number, a.site): a for a in cached}, SITE_FIELDS)
    sites = 0
    for row in client.iter_items("customerAccountSitesLOV", order_by="SiteUseId", fields=CUSTOMER_FIELDS):
        number, values, keys = _site_values(row)
        if not number:
            continue
        for site in keys:
            sites += 1
            changes.take(
                (number, site),
                values,
                partial(CustomerAccount, connection=connection, account_number=number, site=site),
            )
    return sites, changes.save(CustomerAccount, flag="active", started=started)


def _refresh_combinations(
    connection: Connection, client: FusionApi, started: datetime, segment_names: Sequence[str], delimiter: str
) -> tuple[int, int]:
    cached = AccountCombination.objects.filter(connection=connection)
    changes = _Changes({c.combination: c for c in cached}, COMBINATION_FIELDS)
    combinations = 0
    for row in client.iter_items("accountCombinationsLOV", order_by="_CODE_COMBINATION_ID"):
        combination = _combination_of(row, segment_names, delimiter)
        if combination:
            combinations += 1
            changes.take(
                combination,
                _combination_values(row),
                partial(AccountCombination, connection=connection, combination=combination),
            )
    return combinations, changes.save(AccountCombination, flag="enabled", started=started)


def reference_refresh(
    *, connection: Connection, client: FusionApi, segment_names: Sequence[str], delimiter: str = "-"
) -> dict[str, int]:
    """Pull every customer site and account combination and bring the cache in line: new rows inserted, changed
    ones updated, rows no longer returned by Fusion marked inactive/disabled (so a customer or account removed in
    Fusion stops being postable); unchanged rows are left alone. The status row and an audit event are written
    when something changed; when the refresh last confirmed the cache is kept in the cache (refresh_checked_at)."""
    started = timezone.now()
    sites, sites_changed = _refresh_sites(connection, client, started)
    combinations = combinations_changed = 0
    if segment_names:
        combinations, combinations_changed = _refresh_combinations(
            connection, client, started, segment_names, delimiter
        )
    kinds = ["customers", *(["combinations"] if segment_names else [])]
    changed = sites_changed + combinations_changed
    if changed or not ReferenceStatus.objects.filter(connection=connection).exists():
        with transaction.atomic():
            ReferenceStatus.objects.update_or_create(
                connection=connection, defaults={f"{kind}_refreshed_at": started for kind in kinds}
            )
            audit_record(
                action="fusion.reference_refreshed",
                actor="system:fusion-reference",
                connection=connection,
                message=f"{sites} customer sites and {combinations} account combinations refreshed: {changed} "
                "cached rows added, changed or retired",
                data={"sites": sites, "combinations": combinations, "changed": changed},
            )
    cache.set_many({_checked_key(connection.pk, kind): started for kind in kinds}, timeout=None)
    return {"sites": sites, "combinations": combinations, "changed": changed}


def _checked_key(connection_id: int, kind: str) -> str:
    return CHECKED_KEY.format(connection_id=connection_id, kind=kind)


def refresh_checked_at(connection_id: int, kind: str) -> datetime | None:
    """When a complete refresh last confirmed the cached rows of `kind` (customers, combinations); None when the
    cache has forgotten it."""
    return cache.get(_checked_key(connection_id, kind))


def _fresh(obj: CustomerAccount | AccountCombination | None, now: datetime) -> bool:
    """Fetched, or confirmed unchanged by a complete refresh, within MAX_CACHE_AGE."""
    if obj is None:
        return False
    if now - obj.fetched_at < MAX_CACHE_AGE:
        return True
    kind = "customers" if isinstance(obj, CustomerAccount) else "combinations"
    checked = refresh_checked_at(obj.connection_id, kind)
    return checked is not None and now - checked < MAX_CACHE_AGE


def combination_lookup(
    *, connection: Connection, client: FusionApi, combination: str, segment_names: Sequence[str], delimiter: str
) -> AccountCombination | None:
    """The cached combination, fetched from Fusion when missing or stale. None when Fusion has no such combination."""
    now = timezone.now()
    cached = AccountCombination.objects.filter(connection=connection, combination=combination).first()
    if _fresh(cached, now):
        return cached
    values = combination.split(delimiter)
    if len(values) != len(segment_names):
        return None
    q = q_expr(*((name, "=", value) for name, value in zip(segment_names, values, strict=True)))
    for row in client.iter_items("accountCombinationsLOV", q=q, order_by="_CODE_COMBINATION_ID", page_size=5):
        if _combination_of(row, segment_names, delimiter) == combination:
            return _store_combination(connection, row, combination)
    if cached is not None:
        AccountCombination.objects.filter(pk=cached.pk).update(enabled=False)
    return None


def customer_site_lookup(
    *, connection: Connection, client: FusionApi, account_number: str, site: str
) -> CustomerAccount | None:
    now = timezone.now()
    cached = CustomerAccount.objects.filter(connection=connection, account_number=account_number, site=site).first()
    if cached is not None and cached.active and _fresh(cached, now):
        return cached
    q = q_expr(("AccountNumber", "=", account_number))
    found = None
    for row in client.iter_items("customerAccountSitesLOV", q=q, order_by="SiteUseId", fields=CUSTOMER_FIELDS):
        for stored in _store_site(connection, row):
            if stored.site == site:
                found = stored
    if found is None and cached is not None:
        CustomerAccount.objects.filter(pk=cached.pk).update(active=False)
    return found


def reference_check(
    *,
    connection: Connection,
    client: FusionApi,
    on: date,
    customer: tuple[str, str] | None,
    combinations: Iterable[str],
    segment_names: Sequence[str],
    delimiter: str,
) -> list[ReferenceProblem]:
    """Everything wrong with the customer and accounts a plan would post to, in plain words."""
    problems: list[ReferenceProblem] = []
    if customer is not None:
        number, site = customer
        if not site:
            # No bill-to site mapped: any active site of the account will do (Fusion takes its primary one).
            found = CustomerAccount.objects.filter(connection=connection, account_number=number, active=True).first()
            if found is None:
                customer_site_lookup(connection=connection, client=client, account_number=number, site="")
                found = CustomerAccount.objects.filter(
                    connection=connection, account_number=number, active=True
                ).first()
        else:
            found = customer_site_lookup(connection=connection, client=client, account_number=number, site=site)
        if found is None:
            problems.append(
                ReferenceProblem(
                    "customer_unknown",
                    f"Fusion has no active customer account {number}"
                    + (f" with bill-to site {site}" if site else "")
                    + ".",
                    "Correct the customer mapping (bill-to account number and site), or create the account in "
                    "Fusion, then replay.",
                )
            )
    for combination in dict.fromkeys(combinations):
        combo = combination_lookup(
            connection=connection,
            client=client,
            combination=combination,
            segment_names=segment_names,
            delimiter=delimiter,
        )
        if combo is None:
            problems.append(
                ReferenceProblem(
                    "combination_unknown",
                    f"account combination {combination} does not exist in Fusion.",
                    "Correct the GL mapping or create the combination in Fusion, then replay.",
                )
            )
            continue
        reason = combo.unusable_reason(on)
        if reason:
            problems.append(
                ReferenceProblem(
                    "combination_unusable",
                    reason[0].upper() + reason[1:] + ".",
                    "Map the line to an enabled combination (or re-enable it in Fusion), then replay.",
                )
            )
    return problems
