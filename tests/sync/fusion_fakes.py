"""Fusion's itemsV2 and customerAccountSitesLOV and Commerce's customers and products, just enough of their HTTP
contracts for the sync from Fusion tests, answering through `responses` callbacks. Every request is recorded;
`page_size` makes Fusion answer short pages (as a server capping `limit` does) and `fail` queues error answers."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import responses

from mocks.fusion.query import attribute_key, compare, parse_q
from tests.fake_fusion import BASE, TOKEN_URL

COMMERCE = "https://shop.example.com"


def item(n: int, stamp: str, *, status: str = "Active", number: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "ItemId": 300100000 + n,
        "ItemNumber": number or f"SKU-{n}",
        "OrganizationCode": "M1",
        "ItemStatusValue": status,
        "ItemDescription": f"Item {n}",
        "LastUpdateDateTime": stamp,
        **extra,
    }


def site(account: str, site_use_id: int, name: str, *, primary: str = "Y", **extra: Any) -> dict[str, Any]:
    return {
        "AccountNumber": account,
        "SiteUseId": site_use_id,
        "SiteName": name,
        "PrimarySite": primary,
        "CustomerName": f"Customer {account}",
        **extra,
    }


class FakeFusionMaster:
    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.items: list[dict[str, Any]] = []
        self.sites: list[dict[str, Any]] = []
        self.page_size = 500
        self.requests: list[dict[str, str]] = []
        self.fail: list[int] = []  # statuses for the next GETs
        rsps.add(responses.POST, TOKEN_URL, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
        rsps.add_callback(responses.GET, re.compile(rf"{BASE}/itemsV2.*"), lambda r: self._list(r, self.items))
        rsps.add_callback(
            responses.GET, re.compile(rf"{BASE}/customerAccountSitesLOV.*"), lambda r: self._list(r, self.sites)
        )

    def _list(self, request, rows: list[dict[str, Any]]):
        params = {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.requests.append({"path": urlsplit(request.url).path.rsplit("/", 1)[-1], **params})
        if self.fail:
            status = self.fail.pop(0)
            return status, {"Retry-After": "0"}, json.dumps({"title": "error", "o:errorDetails": []})
        if params.get("q"):
            clauses = parse_q(params["q"])
            rows = [r for r in rows if all(compare(r.get(c.attr), c.op, c.value) for c in clauses)]
        for spec in reversed((params.get("orderBy") or "").split(",")):
            if spec:
                rows = sorted(rows, key=attribute_key(spec.partition(":")[0]))
        limit = min(int(params.get("limit", 25)), self.page_size)
        offset = int(params.get("offset", 0))
        page = rows[offset : offset + limit]
        fields = params.get("fields")
        if fields:
            page = [{k: r.get(k) for k in fields.split(",")} for r in page]
        body = {"items": page, "count": len(page), "hasMore": offset + limit < len(rows), "limit": limit}
        return 200, {}, json.dumps(body)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)


def _criteria(request) -> tuple[list[tuple[str, str, str]], int, int]:
    query = {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}
    filters = []
    for key, field in query.items():
        match = re.fullmatch(r"searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[field\]", key)
        if match:
            prefix = key[: -len("[field]")]
            filters.append((field, query[f"{prefix}[value]"], query.get(f"{prefix}[condition_type]", "eq")))
    return filters, int(query.get("searchCriteria[pageSize]", 20)), int(query.get("searchCriteria[currentPage]", 1))


def attributes_of(entity: dict[str, Any]) -> dict[str, Any]:
    return {a["attribute_code"]: a["value"] for a in entity.get("custom_attributes", [])}


def _value(entity: dict[str, Any], field: str) -> Any:
    return entity[field] if field in entity else attributes_of(entity).get(field)


class FakeCommerce:
    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.customers: dict[int, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, path)
        self.writes: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self.fail: dict[str, list[int]] = {}  # "PUT products/SKU-2" -> statuses of the next such calls
        api = rf"{COMMERCE}/rest/(?:default|all)/V1"
        rsps.add_callback(responses.GET, re.compile(rf"{api}/customers/search.*"), self._search_customers)
        rsps.add_callback(responses.GET, re.compile(rf"{api}/customers/\d+$"), self._get_customer)
        rsps.add_callback(responses.PUT, re.compile(rf"{api}/customers/\d+$"), self._put_customer)
        rsps.add_callback(responses.POST, re.compile(rf"{api}/customers$"), self._post_customer)
        rsps.add_callback(responses.GET, re.compile(rf"{api}/products\?.*"), self._search_products)
        rsps.add_callback(responses.PUT, re.compile(rf"{api}/products/[^/?]+$"), self._put_product)
        rsps.add_callback(responses.POST, re.compile(rf"{api}/products$"), self._post_product)

    def customer(self, cid: int, email: str, **attributes: str) -> dict[str, Any]:
        self.customers[cid] = {
            "id": cid,
            "email": email,
            "firstname": "First",
            "lastname": f"Last{cid}",
            "website_id": 1,
            "group_id": 1,
            "store_id": 1,
            "addresses": [{"id": 9, "city": "Austin"}],
            "custom_attributes": [{"attribute_code": k, "value": v} for k, v in attributes.items()],
        }
        return self.customers[cid]

    def product(self, sku: str, **attributes: str) -> dict[str, Any]:
        self.products[sku] = {
            "id": len(self.products) + 1,
            "sku": sku,
            "attribute_set_id": 4,
            "custom_attributes": [{"attribute_code": k, "value": v} for k, v in attributes.items()],
        }
        return self.products[sku]

    # --- plumbing -----------------------------------------------------------------------------------------
    def _seen(self, request) -> tuple[str, int | None]:
        path = unquote(urlsplit(request.url).path.split("/V1/", 1)[1])
        self.calls.append((request.method, path))
        statuses = self.fail.get(f"{request.method} {path}")
        if statuses:
            return path, statuses.pop(0)
        return path, None

    @staticmethod
    def _error(status: int):
        return status, {"Retry-After": "0"}, json.dumps({"message": f"Injected {status}", "parameters": []})

    def writes_to(self, method: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        return [(path, body) for m, path, body in self.writes if m == method and path.startswith(prefix)]

    # --- customers ----------------------------------------------------------------------------------------
    def _search_customers(self, request):
        _, failure = self._seen(request)
        if failure:
            return self._error(failure)
        filters, _, _ = _criteria(request)
        rows = [c for c in self.customers.values() if all(str(_value(c, f)) == v for f, v, _ in filters)]
        return 200, {}, json.dumps({"items": rows, "total_count": len(rows)})

    def _get_customer(self, request):
        path, failure = self._seen(request)
        if failure:
            return self._error(failure)
        customer = self.customers.get(int(path.rsplit("/", 1)[1]))
        if customer is None:
            return 404, {}, json.dumps({"message": "No such entity", "parameters": []})
        return 200, {}, json.dumps(customer)

    def _put_customer(self, request):
        path, failure = self._seen(request)
        body = json.loads(request.body)
        self.writes.append(("PUT", path, body))
        if failure:
            return self._error(failure)
        given = body["customer"]
        stored = self.customers[int(path.rsplit("/", 1)[1])]
        stored.update({k: v for k, v in given.items() if k != "custom_attributes"})
        merged = {**attributes_of(stored), **{a["attribute_code"]: a["value"] for a in given["custom_attributes"]}}
        stored["custom_attributes"] = [{"attribute_code": k, "value": v} for k, v in merged.items()]
        return 200, {}, json.dumps(stored)

    def _post_customer(self, request):
        path, failure = self._seen(request)
        body = json.loads(request.body)
        self.writes.append(("POST", path, body))
        if failure:
            return self._error(failure)
        cid = max(self.customers, default=100) + 1
        self.customers[cid] = {**body["customer"], "id": cid}
        return 200, {}, json.dumps(self.customers[cid])

    # --- products -----------------------------------------------------------------------------------------
    def _search_products(self, request):
        _, failure = self._seen(request)
        if failure:
            return self._error(failure)
        filters, _, _ = _criteria(request)
        rows = list(self.products.values())
        for field, value, condition in filters:
            wanted = value.split(",") if condition == "in" else [value]
            rows = [p for p in rows if str(_value(p, field)) in wanted]
        return 200, {}, json.dumps({"items": rows, "total_count": len(rows)})

    def _put_product(self, request):
        path, failure = self._seen(request)
        body = json.loads(request.body)
        self.writes.append(("PUT", path, body))
        if failure:
            return self._error(failure)
        stored = self.products[path.split("/", 1)[1]]
        given = {a["attribute_code"]: a["value"] for a in body["product"]["custom_attributes"]}
        merged = {**attributes_of(stored), **given}
        stored["custom_attributes"] = [{"attribute_code": k, "value": v} for k, v in merged.items()]
        return 200, {}, json.dumps(stored)

    def _post_product(self, request):
        path, failure = self._seen(request)
        body = json.loads(request.body)
        self.writes.append(("POST", path, body))
        if failure:
            return self._error(failure)
        self.products[body["product"]["sku"]] = {**body["product"], "id": 900}
        return 200, {}, json.dumps(self.products[body["product"]["sku"]])
