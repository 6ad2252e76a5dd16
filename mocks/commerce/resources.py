"""The Commerce resources the connector reads and writes: orders, invoices and credit memos (GET by id and
searchCriteria search), customers (GET, search, POST, PUT), products (GET and PUT by SKU, POST, search) and
store/storeConfigs. Answers are Magento's: the entity as JSON, 404 "The entity that was requested doesn't exist",
400 `{"message": ..., "parameters": ...}` with Magento's %-placeholders.

Product writes follow Magento's scopes: a PUT through `/rest/<store code>/V1/products/{sku}` saves that store
view's values (GET through the same store code shows them), through `/rest/all/V1/...` the global ones. A
customer PUT without `addresses` keeps the stored addresses; custom attributes merge by attribute_code."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from mocks.commerce.search import search
from mocks.commerce.seed import STORE_CONFIGS
from mocks.server import DROP, Handler, MockError, MockRequest, MockResponse, MockServer, json_response

NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."
REQUIRED = '"%fieldName" is required. Enter and try again.'

Store = dict[Any, dict[str, Any]]


class CommerceResources(MockServer):
    """The resource handlers, over the data MockCommerce._seed_data sets."""

    _lock: threading.RLock
    orders: Store
    invoices: Store
    creditmemos: Store
    customers: Store
    products: Store
    product_overrides: dict[str, dict[str, dict[str, Any]]]
    product_writes: list[dict[str, str]]
    store_codes: tuple[str, ...]
    max_page_size: int

    def _stamp(self) -> str:
        return self.utcnow().strftime("%Y-%m-%d %H:%M:%S")

    def get_of(self, store_of: Callable[[], Store]) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            with self._lock:
                row = store_of().get(int(request.path_args["id"]))
                row = copy.deepcopy(row)
            if row is None:
                raise MockError(404, NOT_FOUND)
            return json_response(200, row)

        return handler

    def search_of(self, store_of: Callable[[], Store]) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            # Searched and answered under the lock (the answer is serialised there), so nothing is copied: a search
            # over twenty thousand products stays fast.
            with self._lock:
                return search(request, list(store_of().values()), max_page_size=self.max_page_size)

        return handler

    def add_scale(self, *, products: int = 0, customers: int = 0) -> dict[str, int]:
        """Generate products (FUS-000001...) and customers (erp_account_number 400001...) by the thousand, the
        counterparts of the mock Fusion's scale seed; the default seed stays small so the mock starts at once."""
        with self._lock:
            now = self._stamp()
            for n in range(1, products + 1):
                sku = f"FUS-{n:06d}"
                fields = {"name": f"Generated product {n}", "price": "10.0000", "weight": "1.0000"}
                tax = [{"attribute_code": "tax_class_id", "value": "2"}]
                self.products[sku] = {**self._new_product(sku, fields, tax, now), "id": 100000 + n}
            for n in range(1, customers + 1):
                customer_id = 100000 + n
                self.customers[customer_id] = {
                    "id": customer_id,
                    "group_id": 1,
                    "created_at": now,
                    "updated_at": now,
                    "created_in": "Default Store View",
                    "email": f"customer{n}@example.com",
                    "firstname": "Generated",
                    "lastname": f"Customer {n}",
                    "store_id": 1,
                    "website_id": 1,
                    "addresses": [],
                    "disable_auto_group_change": 0,
                    "extension_attributes": {"is_subscribed": False},
                    "custom_attributes": [{"attribute_code": "erp_account_number", "value": str(400000 + n)}],
                }
            return {"products": len(self.products), "customers": len(self.customers)}

    def store_configs(self, request: MockRequest) -> MockResponse:
        return json_response(200, [dict(c) for c in STORE_CONFIGS if c["code"] in self.store_codes] or STORE_CONFIGS)

    @staticmethod
    def _payload(request: MockRequest, key: str) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise MockError(400, REQUIRED, parameters={"fieldName": key})
        return body[key]

    @staticmethod
    def _check_custom_attributes(value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(a, dict) and a.get("attribute_code") for a in value):
            raise MockError(400, "custom_attributes is a list of {attribute_code, value}.")
        return value

    @staticmethod
    def _merge_attributes(existing: list[dict[str, Any]], given: list[dict[str, Any]]) -> list[dict[str, Any]]:
        merged = {a["attribute_code"]: a for a in existing}
        merged.update(
            {a["attribute_code"]: {"attribute_code": a["attribute_code"], "value": a.get("value")} for a in given}
        )
        return list(merged.values())

    def create_customer(self, request: MockRequest) -> MockResponse:
        given = self._payload(request, "customer")
        for name in ("email", "firstname", "lastname"):
            if not given.get(name):
                raise MockError(400, REQUIRED, parameters={"fieldName": name})
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        with self._lock:
            website = given.get("website_id", 1)
            if any(
                c["email"].lower() == str(given["email"]).lower() and c["website_id"] == website
                for c in self.customers.values()
            ):
                raise MockError(400, "A customer with the same email address already exists in an associated website.")
            customer_id = max(self.customers, default=0) + 1
            now = self._stamp()
            customer = {
                "id": customer_id,
                "group_id": 1,
                "created_at": now,
                "updated_at": now,
                "created_in": "Default Store View",
                "store_id": 1,
                "website_id": website,
                "addresses": [],
                "disable_auto_group_change": 0,
                "extension_attributes": {"is_subscribed": False},
                **{k: v for k, v in given.items() if k not in ("id", "custom_attributes")},
                "custom_attributes": attributes,
            }
            customer["id"] = customer_id
            self.customers[customer_id] = customer
            self.counters["customers_created"] += 1
        if self.maybe_drop():
            return DROP
        return json_response(200, copy.deepcopy(customer))

    def update_customer(self, request: MockRequest) -> MockResponse:
        given = self._payload(request, "customer")
        customer_id = int(request.path_args["id"])
        for name in ("email", "firstname", "lastname"):
            if not given.get(name):
                raise MockError(400, REQUIRED, parameters={"fieldName": name})
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        with self._lock:
            existing = self.customers.get(customer_id)
            if existing is None:
                raise MockError(
                    404,
                    "No such entity with %fieldName = %fieldValue",
                    parameters={"fieldName": "customerId", "fieldValue": customer_id},
                )
            updated = {**existing, **{k: v for k, v in given.items() if k not in ("id", "custom_attributes")}}
            # An omitted addresses key keeps the stored addresses; custom attributes merge by code.
            updated["custom_attributes"] = self._merge_attributes(existing.get("custom_attributes", []), attributes)
            updated.update(id=customer_id, updated_at=self._stamp())
            self.customers[customer_id] = updated
            self.counters["customers_updated"] += 1
            return json_response(200, copy.deepcopy(updated))

    def _product_view(self, sku: str, store: str) -> dict[str, Any]:
        product = copy.deepcopy(self.products[sku])
        override = self.product_overrides.get(sku, {}).get(store, {})
        for key, value in override.items():
            if key == "custom_attributes":
                product["custom_attributes"] = self._merge_attributes(product["custom_attributes"], value)
            else:
                product[key] = value
        return product

    def get_product(self, request: MockRequest) -> MockResponse:
        sku = unquote(request.path_args["sku"])
        with self._lock:
            if sku not in self.products:
                raise MockError(404, "The product that was requested doesn't exist. Verify the product and try again.")
            return json_response(200, self._product_view(sku, request.path_args["store"]))

    def save_product(self, request: MockRequest) -> MockResponse:
        """PUT /products/{sku} and POST /products both save: an unknown SKU is created, a known one updated. A
        write through a store code lands as that store view's override; through `all` it is global."""
        given = self._payload(request, "product")
        sku = unquote(request.path_args["sku"]) if "sku" in request.path_args else str(given.get("sku") or "")
        if not sku:
            raise MockError(400, REQUIRED, parameters={"fieldName": "sku"})
        if given.get("sku", sku) != sku:
            raise MockError(400, "The sku in the body does not match the sku in the URL.")
        attributes = self._check_custom_attributes(given.get("custom_attributes", []))
        store = request.path_args["store"]
        fields = {k: v for k, v in given.items() if k not in ("id", "sku", "custom_attributes")}
        with self._lock:
            now = self._stamp()
            if sku not in self.products:
                if not given.get("name"):
                    raise MockError(400, REQUIRED, parameters={"fieldName": "name"})
                self.products[sku] = self._new_product(sku, fields, attributes, now)
                self.counters["products_created"] += 1
            elif store == "all":
                product = self.products[sku]
                product.update(fields)
                product["custom_attributes"] = self._merge_attributes(product["custom_attributes"], attributes)
                product["updated_at"] = now
                self.counters["products_updated"] += 1
            else:
                override = self.product_overrides.setdefault(sku, {}).setdefault(store, {})
                override.update(fields)
                override["custom_attributes"] = self._merge_attributes(
                    override.get("custom_attributes", []), attributes
                )
                self.products[sku]["updated_at"] = now
                self.counters["products_updated"] += 1
            self.product_writes.append({"sku": sku, "scope": store, "method": request.method})
            view = self._product_view(sku, store if store != "all" else "default")
        if request.method == "POST" and self.maybe_drop():
            return DROP
        return json_response(200, view)

    def _new_product(
        self, sku: str, fields: dict[str, Any], attributes: list[dict[str, Any]], now: str
    ) -> dict[str, Any]:
        """A simple product, enabled and visible on website 1 unless the given fields say otherwise."""
        product_id = max((p["id"] for p in self.products.values()), default=0) + 1
        return {
            "id": product_id,
            "sku": sku,
            "attribute_set_id": 4,
            "price": "0.0000",
            "status": 1,
            "visibility": 4,
            "type_id": "simple",
            "created_at": now,
            "extension_attributes": {"website_ids": [1]},
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            **fields,
            "custom_attributes": attributes,
            "updated_at": now,
        }
