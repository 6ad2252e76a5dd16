"""The Adobe Commerce REST client, built from a connection.

PaaS: `{base}/rest/{store_code}/V1/...`, OAuth 1.0a; global product writes go through `/rest/all/V1/...` (Commerce
refuses a GET on `all`). SaaS: `{base}/V1/...` where the base ends with the tenant, IMS bearer token, the scope in
the `Store` header and the client id in `x-api-key`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import requests

from connector.models import Connection
from core import endpoints
from core.errors import ConnectorError, PermanentError
from core.http.answers import error_payload, json_of, status_error, text_detail
from core.http.transport import SystemClient, Transport, new_session
from core.redaction import redact_text

from .auth import CommerceImsAuth, CommerceOAuth1, commerce_auth_for
from .entities import CommerceCustomer, CommerceProduct, attribute_list
from .search import MAX_PAGE_SIZE, SearchCriteria

SYSTEM = "Commerce"
ALL_STORES = "all"
HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
_STORE_CODE = re.compile(r"^[a-z0-9_]+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-.~%]+$")  # % for a quoted SKU
_PLACEHOLDER = re.compile(r"%(\w+)")


# Only what the GL rules look at; `fields` keeps a product's media, options and attributes out of the answer.
PRODUCT_FACT_FIELDS = "sku,attribute_set_id,extension_attributes[category_links]"


@dataclass(frozen=True)
class StoreView:
    """One entry of GET /V1/store/storeViews: the store view's id, code and website."""

    id: str
    code: str
    website_id: str


@dataclass(frozen=True)
class ProductFacts:
    """What GET /V1/products/{sku} says about a product's place in the catalogue."""

    sku: str
    attribute_set_id: str = ""
    category_ids: tuple[str, ...] = ()


def render_message(message: str, parameters: Any) -> str:
    """Fill Commerce's placeholders: `%1` from a parameter list, `%name` from a parameter object."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(parameters, list) and key.isdigit() and 1 <= int(key) <= len(parameters):
            return str(parameters[int(key) - 1])
        if isinstance(parameters, dict) and key in parameters:
            return str(parameters[key])
        return match.group(0)

    return _PLACEHOLDER.sub(fill, message)


def commerce_error_detail(response: requests.Response) -> str:
    """`{"message": "...%1...", "parameters": [...], "errors": [{message, parameters}]}` rendered; else the text."""
    payload = error_payload(response)
    if payload is None:
        return text_detail(response)
    parts = []
    if isinstance(payload.get("message"), str):
        parts.append(render_message(payload["message"], payload.get("parameters")))
    for item in payload.get("errors") or []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            parts.append(render_message(item["message"], item.get("parameters")))
    return redact_text("; ".join(p.strip() for p in parts if p.strip()))[:1000]


def commerce_error(response: requests.Response, *, saas: bool = False) -> ConnectorError | None:
    """The one function that maps a Commerce answer to a typed error (None for a success)."""
    if 200 <= response.status_code < 300:
        return None
    if saas:
        auth_hint = (
            "Commerce refused the IMS token: check that the credential belongs to this tenant's organisation and "
            "project and is granted the Commerce API (scope commerce.accs)."
        )
    else:
        auth_hint = (
            "Commerce refused the OAuth 1.0a signature or the integration's access: check the consumer key and "
            "secret and the access token and secret of an active integration, that the base URL is exactly the "
            "store's own address (the signature covers scheme, host and path), and the integration's API resources."
        )
    return status_error(
        response,
        system=SYSTEM,
        detail=commerce_error_detail(response),
        auth_hint=auth_hint,
        forbidden_hint="Grant the integration the API resource (ACL) for this call.",
    )


class CommerceClient(SystemClient):
    """One connection's Commerce REST API. Build it with `CommerceClient.for_connection(connection)`.
    `exchanges`, `take_exchanges()` and `ensure_token()` (an IMS token, SaaS only) come from SystemClient."""

    def __init__(
        self,
        *,
        base_url: str,
        store_code: str,
        saas: bool,
        auth: CommerceOAuth1 | CommerceImsAuth,
        transport: Transport,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_code = store_code
        self.saas = saas
        self.auth = auth
        self.transport = transport

    def __repr__(self) -> str:
        return f"<CommerceClient {'SaaS' if self.saas else 'PaaS'} {self.base_url} store={self.store_code}>"

    @classmethod
    def for_connection(cls, connection: Connection) -> CommerceClient:
        saas = connection.commerce_deployment == Connection.Deployment.SAAS
        validate = endpoints.validate_commerce_saas_base_url if saas else endpoints.validate_commerce_paas_base_url
        base_url = endpoints.checked_url(
            validate, connection.commerce_base_url, hint="Fix the Commerce base URL of the connection."
        )
        store_code = connection.commerce_store_code or "default"
        if not _STORE_CODE.match(store_code):
            raise PermanentError(f"{store_code!r} is not a Commerce store code.")
        exchanges: list[dict[str, Any]] = []
        auth = commerce_auth_for(connection, exchanges=exchanges)
        headers = dict(HEADERS)
        if saas:
            headers["x-api-key"] = connection.commerce_client_id
            if connection.commerce_org_id:
                headers["x-gw-ims-org-id"] = connection.commerce_org_id
        secrets = [
            connection.commerce_consumer_secret or "",
            connection.commerce_access_token or "",
            connection.commerce_access_token_secret or "",
            connection.commerce_client_secret or "",
        ]
        transport = Transport(
            system=SYSTEM,
            session=new_session(headers),
            error_for=partial(commerce_error, saas=saas),
            secrets=secrets,
            exchanges=exchanges,
        )
        return cls(base_url=base_url, store_code=store_code, saas=saas, auth=auth, transport=transport)

    # --- URLs ------------------------------------------------------------------------------------------

    def url_for(self, path: str, *, store: str | None = None) -> str:
        """`orders/12` -> PaaS `{base}/rest/{store}/V1/orders/12`, SaaS `{base}/V1/orders/12`."""
        store = store or self.store_code
        if not _STORE_CODE.match(store):
            raise PermanentError(f"{store!r} is not a Commerce store code.")
        if not isinstance(path, str) or not path:
            raise PermanentError("A Commerce API path is required.")
        if any(bad in path for bad in ("://", "..", "?", "#", "\\")) or any(c.isspace() for c in path):
            raise PermanentError(f"Refusing the Commerce path {path!r}: not an API path.")
        segments = path.split("/")
        if not all(s and s != "." and _SEGMENT.match(s) for s in segments):
            raise PermanentError(f"Refusing the Commerce path {path!r}: not an API path.")
        if self.saas:
            return f"{self.base_url}/V1/{path}"
        return f"{self.base_url}/rest/{store}/V1/{path}"

    # --- generic calls ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        store: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        method = method.upper()
        store = store or self.store_code
        if method == "GET" and store == ALL_STORES:
            raise PermanentError("Commerce refuses a GET with store code 'all'; read from a store view instead.")
        headers = {"Store": store} if self.saas else None
        response = self.transport.request(
            method, self.url_for(path, store=store), params=params, json=json, headers=headers, auth=self.auth
        )
        return json_of(response, system=SYSTEM)

    def get(self, path: str, params: dict[str, Any] | None = None, *, store: str | None = None) -> Any:
        """GET; retried on transient failures (with backoff, honouring Retry-After)."""
        return self.request("GET", path, store=store, params=params)

    def post(self, path: str, json: Any, *, store: str | None = None) -> Any:
        """POST; never retried here (a timeout after sending raises OutcomeUnknownError)."""
        return self.request("POST", path, store=store, json=json)

    def put(self, path: str, json: Any, *, store: str | None = None) -> Any:
        """PUT; never retried here, like POST."""
        return self.request("PUT", path, store=store, json=json)

    def _object(self, method: str, path: str, *, store: str | None = None, json: Any = None) -> dict[str, Any]:
        body = self.request(method, path, store=store, json=json)
        if not isinstance(body, dict):
            raise PermanentError(f"Commerce answered {path} with a JSON {type(body).__name__}, expected an object")
        return body

    def _get_object(self, path: str) -> dict[str, Any]:
        return self._object("GET", path)

    def iter_search(self, path: str, criteria: SearchCriteria) -> Iterator[dict[str, Any]]:
        """Every item of a search, page by page (`currentPage` from 1), until `page * size >= total_count` or
        an empty page (Commerce answers a page past the end with the last page again)."""
        page = 1
        while True:
            body = self.get(path, params=criteria.page(page).to_params())
            if not isinstance(body, dict) or not isinstance(body.get("items") or [], list):
                raise PermanentError(f"Commerce answered the {path} search without an items list")
            items = body.get("items") or []
            yield from items
            try:
                total = int(body.get("total_count") or 0)
            except (TypeError, ValueError):
                total = 0
            if not items or page * criteria.page_size >= total:
                return
            page += 1

    def iter_changed(self, path: str, updated_since: datetime, *, page_size: int) -> Iterator[dict[str, Any]]:
        """Documents updated at or after `updated_since`, oldest first, by keyset: each page asks again from the
        last row seen (updated_at, then entity_id) instead of for page n. Documents change while we read, and
        a change moves a row to the end of an `updated_at` sort: with page numbers, every row behind it would
        shift one place back and one would be skipped; from a key, a moved row is simply met again later.

        The boundary is `updated_at >= T` AND (`updated_at > T` OR `entity_id > id`) (filters in one group are
        OR'd, groups AND'd); rows at or before the key are skipped here too. A server that ignores the second
        group shows it by answering a full page of rows already seen: from then on the search is `updated_at
        >= T` alone, with page numbers among the rows stamped T (the key still skips those already seen)."""
        size = min(page_size, MAX_PAGE_SIZE)
        since, key = updated_since, None  # key: (updated_at, entity_id) of the last row yielded
        keyset, page = True, 1
        while True:
            criteria = SearchCriteria(page_size=size).where("updated_at", since, "gteq")
            if key is not None and keyset:
                criteria = criteria.where_any([("updated_at", key[0], "gt"), ("entity_id", key[1], "gt")])
            criteria = criteria.order_by("updated_at").order_by("entity_id")
            body = self.get(path, params=criteria.page(page).to_params())
            if not isinstance(body, dict) or not isinstance(body.get("items") or [], list):
                raise PermanentError(f"Commerce answered the {path} search without an items list")
            items = body.get("items") or []
            fresh = [item for item in items if key is None or _after(_row_key(item), key)]
            yield from fresh
            try:
                total = int(body.get("total_count") or 0)
            except (TypeError, ValueError):
                total = 0
            if len(items) < size or page * size >= total:
                return
            last = next((k for k in map(_row_key, reversed(fresh)) if k is not None), None)
            if last is None:  # nothing new, or nothing we can key on: the next page of the same search
                if key is not None:
                    keyset = False  # a full page at or before the key: the server ignores the boundary
                page += 1
            elif last[0] > since:  # on to a later timestamp: a new search from there
                since, key, page = last[0], last, 1
            else:  # still at the same timestamp
                key = last
                page = 1 if keyset else page + 1

    def _updated_since(self, path: str, updated_since: datetime, page_size: int) -> Iterator[dict[str, Any]]:
        criteria = (
            SearchCriteria(page_size=min(page_size, MAX_PAGE_SIZE))
            .where("updated_at", updated_since, "gteq")
            .order_by("updated_at")
            .order_by("entity_id")
        )
        return self.iter_search(path, criteria)

    # --- resources -------------------------------------------------------------------------------------

    def get_order(self, entity_id: int | str) -> dict[str, Any]:
        return self._get_object(f"orders/{_id(entity_id)}")

    def iter_orders(self, updated_since: datetime, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Orders updated at or after `updated_since`, oldest first by (updated_at, entity_id), keyset-paged
        (the backfill of missed webhooks)."""
        return self.iter_changed("orders", updated_since, page_size=page_size)

    def iter_invoices(self, updated_since: datetime, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        return self.iter_changed("invoices", updated_since, page_size=page_size)

    def iter_creditmemos(self, updated_since: datetime, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        return self.iter_changed("creditmemos", updated_since, page_size=page_size)

    def get_customer(self, customer_id: int | str) -> dict[str, Any]:
        return self._get_object(f"customers/{_id(customer_id)}")

    def iter_customers(self, updated_since: datetime, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        return self._updated_since("customers/search", updated_since, page_size)

    def create_customer(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /V1/customers. `payload` is the customer (wrapped as {"customer": ...}) or the whole body."""
        return self._object("POST", "customers", json=_wrapped("customer", payload))

    def update_customer(self, customer_id: int | str, payload: dict[str, Any]) -> dict[str, Any]:
        """PUT /V1/customers/{id} with the customer (including `custom_attributes`); send every required field:
        GET it first and merge."""
        return self._object("PUT", f"customers/{_id(customer_id)}", json=_wrapped("customer", payload))

    def get_product(self, sku: str) -> dict[str, Any]:
        return self._get_object(f"products/{_sku(sku)}")

    def update_product(self, sku: str, payload: dict[str, Any], *, all_stores: bool = True) -> dict[str, Any]:
        """PUT /V1/products/{sku}; through store `all` by default so the values are global, not store overrides."""
        store = ALL_STORES if all_stores else self.store_code
        return self._object("PUT", f"products/{_sku(sku)}", store=store, json=_wrapped("product", payload))

    def create_product(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._object("POST", "products", store=ALL_STORES, json=_wrapped("product", payload))

    def store_views(self) -> list[StoreView]:
        """GET /V1/store/storeViews: every store view (the admin view, id 0, included) with its website."""
        body = self.get("store/storeViews")
        if not isinstance(body, list):
            raise PermanentError(
                f"Commerce answered store/storeViews with a JSON {type(body).__name__}, expected a list"
            )
        views = []
        for item in body:
            if isinstance(item, dict) and _text(item.get("id")):
                views.append(
                    StoreView(
                        id=_text(item.get("id")), code=_text(item.get("code")), website_id=_text(item.get("website_id"))
                    )
                )
        return views

    def product_facts(self, sku: str) -> ProductFacts:
        """GET /V1/products/{sku}, trimmed to its attribute set and category links (NotFoundError when Commerce has
        no product with that SKU)."""
        body = self._object_with_params(f"products/{_sku(sku)}", {"fields": PRODUCT_FACT_FIELDS})
        extension = body.get("extension_attributes")
        links = extension.get("category_links") if isinstance(extension, dict) else None
        categories: list[str] = []
        for link in links if isinstance(links, list) else []:
            category_id = _text(link.get("category_id")) if isinstance(link, dict) else ""
            if category_id and category_id not in categories:
                categories.append(category_id)
        return ProductFacts(
            sku=_text(body.get("sku")) or sku,
            attribute_set_id=_text(body.get("attribute_set_id")),
            category_ids=tuple(categories),
        )

    # --- master data written by the sync from Fusion (commerce.entities) ---------------------------------

    def customer(self, customer_id: int | str) -> CommerceCustomer:
        return CommerceCustomer.from_answer(self.get_customer(customer_id))

    def customer_ids_where(self, field: str, value: str, *, website_id: str = "") -> list[str]:
        """The ids of the customers whose `field` (email, or a custom attribute's code) equals `value`. The search
        finds them; read each by id for its custom attributes (a search may leave them out)."""
        criteria = SearchCriteria(page_size=50).where(field, value).order_by("entity_id")
        if website_id:
            criteria = criteria.where("website_id", website_id)
        ids = []
        for item in self.iter_search("customers/search", criteria):
            if isinstance(item, dict) and str(item.get("id") or "").isdigit():
                ids.append(str(item["id"]))
        return list(dict.fromkeys(ids))

    def update_customer_attributes(self, customer: CommerceCustomer, changes: Mapping[str, str]) -> CommerceCustomer:
        """PUT the customer back with its required fields and all its custom attributes, `changes` applied."""
        return CommerceCustomer.from_answer(self.update_customer(customer.id, customer.update_body(changes)))

    def products_where(self, field: str, values: Iterable[str]) -> list[CommerceProduct]:
        """The products whose `field` (sku, or an attribute's code) is one of `values`, a few searches of
        `in` filters (kept short enough for any URL limit); a value holding a comma is searched on its own."""
        found: list[CommerceProduct] = []
        for condition, chunk in _value_chunks(values):
            criteria = SearchCriteria(page_size=MAX_PAGE_SIZE).where(field, chunk, condition).order_by("entity_id")
            found.extend(CommerceProduct.from_answer(item) for item in self.iter_search("products", criteria))
        return found

    def update_product_attributes(self, sku: str, changes: Mapping[str, str]) -> None:
        """PUT only the changed custom attributes, through store `all` (global values) on PaaS."""
        self.update_product(sku, {"sku": sku, "custom_attributes": attribute_list(changes)})

    def _object_with_params(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = self.get(path, params=params)
        if not isinstance(body, dict):
            raise PermanentError(f"Commerce answered {path} with a JSON {type(body).__name__}, expected an object")
        return body


def updated_at_of(item: Mapping[str, Any]) -> datetime | None:
    """A row's `updated_at` ("YYYY-MM-DD HH:MM:SS", UTC; ISO 8601 accepted) as an aware datetime, else None."""
    text = str(item.get("updated_at") or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row_key(item: Mapping[str, Any]) -> tuple[datetime, int] | None:
    stamp = updated_at_of(item)
    entity_id = str(item.get("entity_id") or "")
    if stamp is None or not entity_id.isdigit():
        return None
    return stamp, int(entity_id)


def _after(key: tuple[datetime, int] | None, boundary: tuple[datetime, int]) -> bool:
    """Past the keyset boundary. A row without a usable key is kept: reading a document twice is harmless."""
    return key is None or key > boundary


def _value_chunks(values: Iterable[str], *, max_chars: int = 2000, max_count: int = 100) -> Iterator[tuple[str, Any]]:
    """(condition, value) pairs covering `values`: `in` lists of at most max_count values and max_chars characters,
    and `eq` for a value with a comma (an `in` list is comma separated)."""
    chunk: list[str] = []
    size = 0
    for value in dict.fromkeys(v for v in values if v):
        if "," in value:
            yield "eq", value
            continue
        if chunk and (len(chunk) >= max_count or size + len(value) + 1 > max_chars):
            yield "in", chunk
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        yield "in", chunk


def _text(value: Any) -> str:
    """An id or code as Commerce may send it (number or string) as text; "" for none."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()


def _id(value: int | str) -> str:
    text = str(value)
    if not text.isdigit():
        raise PermanentError(f"{text!r} is not a Commerce entity id.")
    return text


def _sku(sku: str) -> str:
    if not isinstance(sku, str) or not sku.strip():
        raise PermanentError("A SKU is required.")
    return quote(sku, safe="")


def _wrapped(key: str, payload: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError(f"The {key} payload must be a dict.")
    return payload if isinstance(payload.get(key), dict) else {key: payload}
