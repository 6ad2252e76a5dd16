"""What every Fusion resource answers alike, after the REST framework: the collection envelope (`items`, `count`,
`hasMore`, `limit`, `offset`, `links`, `totalResults` when asked), `q` and `orderBy` filtering and sorting,
`fields` and `onlyData`, `expand` of child resources, self/canonical links on each item, and a 400 naming any
attribute the resource does not have. The mixins of MockFusion (mocks.fusion.app) build on `FusionResources`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mocks.fusion.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Collection,
    attribute_key,
    compare,
    int_arg,
    parse_finder,
    parse_q,
)
from mocks.fusion.seed import SEGMENTS
from mocks.server import Handler, MockError, MockRequest, MockResponse, MockServer, json_response


class FusionResources(MockServer):
    """The mock Fusion's data (set by MockFusion._seed_data) and the reads every resource shares."""

    _lock: threading.RLock
    invoices: Collection
    credit_memos: Collection
    combinations: Collection
    customer_sites: Collection
    items: Collection
    ledgers: Collection

    def combination_by_segments(self, combination: str) -> dict[str, Any] | None:
        """The accountCombinationsLOV row of `01-000-4110-0000-000`, or None."""
        for row in self.combinations.rows.values():
            if "-".join(str(row[s]) for s in SEGMENTS) == combination:
                return row
        return None

    def _root(self, request: MockRequest) -> str:
        return f"{request.origin}/fscmRestApi/resources/{request.path_args['version']}"

    def _present(
        self, request: MockRequest, collection: Collection, row: dict[str, Any], *, include_children: bool
    ) -> dict[str, Any]:
        """One item as answered: the `fields` asked for (or all, children only when included), with its links
        unless `onlyData=true`."""
        fields = request.arg("fields")
        if fields:
            names = [f for f in fields.split(",") if ":" not in f]
            for name in names:
                collection.check_attribute(name)
            item = {name: row.get(name) for name in names}
        else:
            item = {k: v for k, v in row.items() if include_children or k not in collection.children}
        if (request.arg("onlyData") or "false").lower() != "true":
            href = f"{self._root(request)}/{collection.name}/{row[collection.key]}"
            item["links"] = [
                {"rel": "self", "href": href, "name": collection.name, "kind": "item"},
                {"rel": "canonical", "href": href, "name": collection.name, "kind": "item"},
            ]
        return item

    def _page(self, request: MockRequest, collection: Collection, rows: list[dict[str, Any]]) -> MockResponse:
        """The collection answer for `rows`: filtered by q, sorted by orderBy, one page of limit/offset."""
        q = request.arg("q")
        if q:
            clauses = parse_q(q)
            for clause in clauses:
                collection.check_attribute(clause.attr)
            rows = [r for r in rows if all(compare(r.get(c.attr), c.op, c.value) for c in clauses)]
        order_by = request.arg("orderBy")
        if order_by:
            for spec in reversed(order_by.split(",")):
                attr, _, direction = spec.partition(":")
                collection.check_attribute(attr)
                if direction not in ("", "asc", "desc"):
                    raise MockError(400, f"The orderBy direction {direction!r} is not valid.")
                rows = sorted(rows, key=attribute_key(attr), reverse=direction == "desc")
        limit = min(int_arg(request, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        offset = int_arg(request, "offset", 0)
        page = rows[offset : offset + limit]
        has_more = offset + limit < len(rows)
        expand = bool(request.arg("expand")) and not request.arg("fields")
        body: dict[str, Any] = {
            "items": [self._present(request, collection, r, include_children=expand) for r in page],
            "count": len(page),
            "hasMore": has_more,
            "limit": limit,
            "offset": offset,
        }
        if (request.arg("totalResults") or "false").lower() == "true":
            body["totalResults"] = len(rows)
        href = f"{self._root(request)}/{collection.name}"
        body["links"] = [{"rel": "self", "href": request.url, "name": collection.name, "kind": "collection"}]
        if has_more:
            body["links"].append(
                {
                    "rel": "next",
                    "href": f"{href}?limit={limit}&offset={offset + limit}",
                    "name": collection.name,
                    "kind": "collection",
                }
            )
        return json_response(200, body)

    def list_of(self, collection_of: Callable[[], Collection]) -> Handler:
        """GET of a collection that has no finders."""

        def handler(request: MockRequest) -> MockResponse:
            collection = collection_of()
            if request.arg("finder"):
                name, _ = parse_finder(request.arg("finder") or "")
                raise MockError(400, f"The finder {name} is not found in the resource {collection.name}.")
            with self._lock:
                rows = list(collection.rows.values())
            return self._page(request, collection, rows)

        return handler

    def get_row(self, collection_of: Callable[[], Collection]) -> Handler:
        """GET of one item by its key."""

        def handler(request: MockRequest) -> MockResponse:
            collection = collection_of()
            with self._lock:
                row = collection.rows.get(request.path_args["id"])
            if row is None:
                raise MockError(
                    404, f"The requested resource {collection.name}/{request.path_args['id']} does not exist."
                )
            return json_response(200, self._present(request, collection, row, include_children=True))

        return handler
