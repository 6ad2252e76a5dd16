"""Fusion master data as the sync from Fusion reads it, parsed at the client's edge into small dataclasses:

- items of `itemsV2` changed since a time, oldest first, keyset-paged on the change timestamp and `ItemId`: each
  page asks again from the last row seen instead of for offset n, so an item edited while the sync reads (it
  moves to the end of a timestamp sort) neither pushes an unread row past the window nor is lost;
- the customer account sites of `customerAccountSitesLOV`, all of them (no documented change timestamp: the
  caller compares content), ordered by account number then SiteUseId so the sites of one account come together.

Each function takes the `get(resource, params)` of a client, so the paced client paces every page on its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import PermanentError

from .query import Clause, fields_param, q_expr

Get = Callable[[str, dict[str, Any]], dict[str, Any]]

ITEMS = "itemsV2"
CUSTOMER_SITES = "customerAccountSitesLOV"
ITEM_FIELDS = ("ItemId", "ItemNumber", "OrganizationCode", "ItemStatusValue", "ItemDescription")
SITE_FIELDS = ("AccountNumber", "SiteUseId", "SiteName", "PrimarySite", "CustomerName")
ACTIVE_ITEM_STATUSES = frozenset({"active"})


def text_of(value: Any) -> str:
    """A Fusion attribute as text: '' for none, Y/N flags and booleans as true/false kept as sent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def stamp_of(value: Any) -> datetime | None:
    """A Fusion timestamp (`2026-10-01T14:53:51+00:00`) as an aware datetime; None when absent or unreadable."""
    text = text_of(value)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FusionItem:
    """One item of the item master organisation. `values` holds every attribute asked for, as text."""

    item_id: str
    item_number: str
    organization_code: str
    status: str
    description: str
    updated_at: datetime | None
    values: Mapping[str, str]

    @property
    def active(self) -> bool:
        return self.status.casefold() in ACTIVE_ITEM_STATUSES

    @classmethod
    def from_row(cls, row: dict[str, Any], stamp: str) -> FusionItem:
        item_id, number = text_of(row.get("ItemId")), text_of(row.get("ItemNumber"))
        if not item_id or not number:
            raise PermanentError(f"Fusion answered {ITEMS} with an item without ItemId or ItemNumber: {row!r:.200}")
        return cls(
            item_id=item_id,
            item_number=number,
            organization_code=text_of(row.get("OrganizationCode")),
            status=text_of(row.get("ItemStatusValue")),
            description=text_of(row.get("ItemDescription")),
            updated_at=stamp_of(row.get(stamp)),
            values={name: text_of(value) for name, value in row.items() if name != "links"},
        )


@dataclass(frozen=True)
class CustomerSite:
    """One bill-to site of a customer account. `values` holds every attribute asked for, as text."""

    account_number: str
    site_use_id: str
    site_name: str
    primary: bool
    customer_name: str
    values: Mapping[str, str]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CustomerSite:
        number = text_of(row.get("AccountNumber"))
        if not number:
            raise PermanentError(f"Fusion answered {CUSTOMER_SITES} with a site without AccountNumber: {row!r:.200}")
        return cls(
            account_number=number,
            site_use_id=text_of(row.get("SiteUseId")),
            site_name=text_of(row.get("SiteName")),
            primary=text_of(row.get("PrimarySite")).upper() in ("Y", "TRUE"),
            customer_name=text_of(row.get("CustomerName")),
            values={name: text_of(value) for name, value in row.items() if name != "links"},
        )


def _fields(base: tuple[str, ...], extra: tuple[str, ...]) -> str:
    names = list(dict.fromkeys((*base, *extra)))
    return fields_param(",".join(names))


def _page(get: Get, resource: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    answer = get(resource, params)
    items = answer.get("items")
    if not isinstance(items, list):
        raise PermanentError(f"Fusion answered {resource} without an items list")
    return [row for row in items if isinstance(row, dict)], bool(answer.get("hasMore"))


def item_changes(
    get: Get,
    *,
    organization: str,
    stamp: str,
    since: datetime | None,
    fields: tuple[str, ...] = (),
    page_size: int = 500,
) -> Iterator[FusionItem]:
    """Items of `organization` whose `stamp` (LastUpdateDateTime or LastUpdateDate) is at or after `since`
    (every item when None), oldest first by (stamp, ItemId).

    A page is asked for by key, never by offset: after a page ending at (T, id), the rest of the items stamped T
    come from `stamp = T and ItemId > id` (ordered by ItemId), then the search goes on with `stamp > T`. Only
    `and` is used (Fusion documents no `or`)."""
    base: tuple[Clause, ...] = (("OrganizationCode", "=", organization),)
    params = {"fields": _fields((*ITEM_FIELDS, stamp), fields), "onlyData": "true", "limit": page_size, "offset": 0}
    lower: Clause | None = (stamp, ">=", since) if since is not None else None
    while True:
        clauses = base + ((lower,) if lower is not None else ())
        rows, more = _page(get, ITEMS, {**params, "q": q_expr(*clauses), "orderBy": f"{stamp},ItemId"})
        items = [FusionItem.from_row(row, stamp) for row in rows]
        yield from items
        if not more or not items:
            return
        last = items[-1]
        if last.updated_at is None:
            raise PermanentError(
                f"Fusion answered {ITEMS} with item {last.item_number} without {stamp}: check the item timestamp "
                "attribute in the sync settings (itemsV2/describe lists the attributes)."
            )
        key = int(last.item_id) if last.item_id.isdigit() else last.item_id
        while True:  # the rest of the items stamped like the last one
            same = (*base, (stamp, "=", last.updated_at), ("ItemId", ">", key))
            rows, more = _page(get, ITEMS, {**params, "q": q_expr(*same), "orderBy": "ItemId"})
            rest = [FusionItem.from_row(row, stamp) for row in rows]
            yield from rest
            if not more or not rest:
                break
            key = int(rest[-1].item_id) if rest[-1].item_id.isdigit() else rest[-1].item_id
        lower = (stamp, ">", last.updated_at)


def items_numbered(
    get: Get, *, organization: str, item_number: str, stamp: str, fields: tuple[str, ...] = ()
) -> list[FusionItem]:
    """The item of the organisation with this ItemNumber (an empty list when Fusion has none)."""
    q = q_expr(("OrganizationCode", "=", organization), ("ItemNumber", "=", item_number))
    rows, _ = _page(get, ITEMS, {"q": q, "fields": _fields((*ITEM_FIELDS, stamp), fields), "onlyData": "true"})
    return [item for item in (FusionItem.from_row(row, stamp) for row in rows) if item.item_number == item_number]


def customer_sites(
    get: Get, *, fields: tuple[str, ...] = (), account_number: str | None = None, page_size: int = 500
) -> Iterator[CustomerSite]:
    """Every customer account site (or those of one account), ordered by AccountNumber then SiteUseId, paged with
    limit/offset until hasMore is false."""
    params: dict[str, Any] = {
        "fields": _fields(SITE_FIELDS, fields),
        "orderBy": "AccountNumber,SiteUseId",
        "onlyData": "true",
        "limit": page_size,
    }
    if account_number is not None:
        params["q"] = q_expr(("AccountNumber", "=", account_number))
    offset = 0
    while True:
        rows, more = _page(get, CUSTOMER_SITES, {**params, "offset": offset})
        for row in rows:
            site = CustomerSite.from_row(row)
            if account_number is None or site.account_number == account_number:
                yield site
        if not more or not rows:
            return
        offset += len(rows)
