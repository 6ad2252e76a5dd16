"""Fusion reference data the posting relies on: customer accounts with their bill-to sites, and GL account
combinations. Cached locally, refreshed on the beat schedule, fetched on a miss before posting. Nothing is
posted to a disabled, end-dated or unknown combination or customer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

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


def _store_combination(connection: Connection, row: dict, combination: str) -> AccountCombination:
    obj, _ = AccountCombination.objects.update_or_create(
        connection=connection,
        combination=combination,
        defaults={
            "code_combination_id": str(row.get("_CODE_COMBINATION_ID") or ""),
            "enabled": _flag(row.get("EnabledFlag", "Y")),
            "start_date": _date(row.get("StartDateActive")),
            "end_date": _date(row.get("EndDateActive")),
            "detail_posting_allowed": _flag(row.get("DetailPostingAllowedFlag", "Y")),
            "account_type": str(row.get("AccountType") or "")[:4],
        },
    )
    return obj


def _store_site(connection: Connection, row: dict) -> list[CustomerAccount]:
    """A customerAccountSitesLOV row is findable by its SiteUseId and by its site name (BillToSite takes either)."""
    number = str(row.get("AccountNumber") or "")
    if not number:
        return []
    defaults = {
        "site_use_id": str(row.get("SiteUseId") or ""),
        "site_name": str(row.get("SiteName") or ""),
        "customer_name": str(row.get("CustomerName") or ""),
        "customer_account_id": str(row.get("CustomerAccountId") or ""),
        "party_number": str(row.get("PartyNumber") or ""),
        "active": True,
    }
    stored = []
    for site in {defaults["site_use_id"], defaults["site_name"]} - {""}:
        obj, _ = CustomerAccount.objects.update_or_create(
            connection=connection, account_number=number, site=site, defaults=defaults
        )
        stored.append(obj)
    return stored


def reference_refresh(
    *, connection: Connection, client: FusionApi, segment_names: Sequence[str], delimiter: str = "-"
) -> dict[str, int]:
    """Pull every customer site and account combination into the cache. Rows no longer returned by Fusion are
    marked inactive/disabled, so a customer or account removed in Fusion stops being postable."""
    started = timezone.now()
    sites = 0
    for row in client.iter_items("customerAccountSitesLOV", order_by="SiteUseId", fields=CUSTOMER_FIELDS):
        sites += len(_store_site(connection, row))
    CustomerAccount.objects.filter(connection=connection, fetched_at__lt=started).update(active=False)
    combinations = 0
    if segment_names:
        for row in client.iter_items("accountCombinationsLOV", order_by="_CODE_COMBINATION_ID"):
            combination = _combination_of(row, segment_names, delimiter)
            if combination:
                _store_combination(connection, row, combination)
                combinations += 1
        AccountCombination.objects.filter(connection=connection, fetched_at__lt=started).update(enabled=False)
    with transaction.atomic():
        ReferenceStatus.objects.update_or_create(
            connection=connection,
            defaults={
                "customers_refreshed_at": started,
                **({"combinations_refreshed_at": started} if segment_names else {}),
            },
        )
        audit_record(
            action="fusion.reference_refreshed",
            actor="system:fusion-reference",
            connection=connection,
            message=f"{sites} customer sites and {combinations} account combinations refreshed",
            data={"sites": sites, "combinations": combinations},
        )
    return {"sites": sites, "combinations": combinations}


def _fresh(obj: CustomerAccount | AccountCombination | None, now: datetime) -> bool:
    return obj is not None and now - obj.fetched_at < MAX_CACHE_AGE


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
