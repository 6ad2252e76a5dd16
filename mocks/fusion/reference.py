"""The reference lists a client checks a document against: accountCombinationsLOV (the GL account combinations,
by `_CODE_COMBINATION_ID` or with the `PrimaryKey` finder, plus `describe`), customerAccountSitesLOV (customer
accounts and their bill-to sites) and itemsV2 (inventory items, with Fusion's opaque item key, stamped
LastUpdateDateTime). Rows can be added at run time through POST /__mock__/rows/<resource>, and thousands generated
through POST /__mock__/scale (`{"items": 20000, "customer_accounts": 500, "replace": true}`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mocks.fusion.query import Collection, parse_finder
from mocks.fusion.rest import FusionResources
from mocks.fusion.seed import SEGMENTS, item_row, scale_customer_sites, scale_items
from mocks.server import MockError, MockRequest, MockResponse, json_response


class ReferenceData(FusionResources):
    """Reads of the account combinations, and rows added to any reference list."""

    @staticmethod
    def _item_key(item: dict[str, Any]) -> str:
        # Fusion's itemsV2 key is an opaque hash: clients take it from links, never build it.
        raw = f"{item['ItemId']}:{item['OrganizationId']}".encode()
        return "00020000000EACED0005770800" + raw.hex().upper()

    def list_combinations(self, request: MockRequest) -> MockResponse:
        finder = request.arg("finder")
        with self._lock:
            rows = list(self.combinations.rows.values())
        if finder:
            name, variables = parse_finder(finder)
            if name != "PrimaryKey" or set(variables) != {"_CODE_COMBINATION_ID"}:
                raise MockError(400, f"The finder {finder!r} is not found in the resource accountCombinationsLOV.")
            rows = [r for r in rows if str(r["_CODE_COMBINATION_ID"]) == variables["_CODE_COMBINATION_ID"]]
        return self._page(request, self.combinations, rows)

    def describe_combinations(self, request: MockRequest) -> MockResponse:
        attributes = [{"name": a, "queryable": True, "type": "string"} for a in self.combinations.attributes]
        return json_response(
            200,
            {
                "Resources": {
                    "accountCombinationsLOV": {"attributes": attributes, "segments": list(SEGMENTS), "delimiter": "-"}
                }
            },
        )

    def add_rows(self, resource: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add or replace reference rows (items bump LastUpdateDateTime), as the admin endpoint does."""
        collection = {c.name: c for c in (self.combinations, self.customer_sites, self.items)}.get(resource)
        if collection is None:
            raise MockError(
                404, f"Rows can be added to accountCombinationsLOV, customerAccountSitesLOV or itemsV2, not {resource}."
            )
        added = []
        with self._lock:
            for given in rows:
                if not isinstance(given, dict):
                    raise MockError(400, "Each row is a JSON object.")
                row = self._item_row(given) if collection is self.items else self._reference_row(collection, given)
                unknown = set(row) - set(collection.attributes)
                if unknown:
                    raise MockError(400, f"Unknown attributes for {collection.name}: {', '.join(sorted(unknown))}.")
                collection.rows[str(row[collection.key])] = row
                added.append(row)
        return added

    def _item_row(self, given: dict[str, Any]) -> dict[str, Any]:
        """An item as given, over the item of the same number and organization if there is one; its
        LastUpdateDateTime is now."""
        existing = next(
            (
                r
                for r in self.items.rows.values()
                if r["ItemNumber"] == given.get("ItemNumber")
                and r["OrganizationCode"] == given.get("OrganizationCode", "M1")
            ),
            None,
        )
        if existing is None and "ItemNumber" not in given:
            raise MockError(400, "An item needs ItemNumber.")
        base = (
            dict(existing)
            if existing
            else item_row(300100050002000 + len(self.items.rows), given["ItemNumber"], "", "", "")
        )
        row = {**base, **given, "LastUpdateDateTime": self.utcnow().isoformat()}
        row["itemsV2UniqID"] = self._item_key(row)
        return row

    def add_scale(self, *, items: int = 0, customer_accounts: int = 0, replace: bool = False) -> dict[str, int]:
        """Generate items (FUS-000001...) and customer accounts (400001...) by the thousand, for scale runs, in
        place of the seeded ones with `replace`; the default seed stays small so the mock starts at once."""
        with self._lock:
            if replace:
                self.items.rows.clear()
                self.customer_sites.rows.clear()
            for row in scale_items(items):
                row["itemsV2UniqID"] = self._item_key(row)
                self.items.rows[row["itemsV2UniqID"]] = row
            for row in scale_customer_sites(customer_accounts):
                self.customer_sites.rows[str(row["SiteUseId"])] = row
            return {"items": len(self.items.rows), "customer_sites": len(self.customer_sites.rows)}

    def _reference_row(self, collection: Collection, given: dict[str, Any]) -> dict[str, Any]:
        """An account combination or customer site as given, unknown attributes empty. An account combination may
        be given as `"combination": "01-000-4110-0000-000"` (enabled, with a new id unless one is given)."""
        template = dict.fromkeys(collection.attributes)
        if collection is self.combinations and "combination" in given:
            given = dict(given)
            given.update(zip(SEGMENTS, given.pop("combination").split("-"), strict=True))
            given.setdefault("_CODE_COMBINATION_ID", 627000 + len(collection.rows))
            given.setdefault("EnabledFlag", "Y")
        row = {**template, **given}
        if row.get(collection.key) is None:
            raise MockError(400, f"A {collection.name} row needs {collection.key}.")
        return row
