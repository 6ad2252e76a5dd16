"""The mock Adobe Commerce server: PaaS REST with OAuth 1.0a and SaaS REST behind Adobe IMS, on one port, with
in-memory sample data. For tests and demos only, never for production.

PaaS paths are `/rest/<store code>/V1/...` (`/rest/V1/...` is the default store; `/rest/all/V1/...` is for
writes, a GET there is refused); SaaS paths are `/<tenant>/V1/...`, the store view in the `Store` header. Errors
are Magento's `{"message": "...%1...", "parameters": [...]}`, the API gateway's `{"error_code", "message"}` on
SaaS, and OAuth's `error`/`error_description` on the IMS token endpoint. Each resource needs an ACL resource
(e.g. Magento_Sales::actions_view), named in 401 and 403 answers. Use it in-process (`MockCommerce().start()`)
or as a process (`CONNECTOR_MOCKS=1 python manage.py mock_commerce --port 8802`).

The handlers live in mocks.commerce.auth (OAuth 1.0a, IMS, API gateway) and mocks.commerce.resources; the
sample data in mocks.commerce.seed; searchCriteria in mocks.commerce.search."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from mocks.commerce.auth import CommerceAuth
from mocks.commerce.resources import CommerceResources
from mocks.commerce.seed import seed_creditmemos, seed_customers, seed_invoices, seed_orders, seed_products
from mocks.server import Faults, Handler, MockError, MockRequest, MockResponse, json_response

SALES_ACL = "Magento_Sales::actions_view"
CUSTOMER_ACL = "Magento_Customer::manage"
CATALOG_ACL = "Magento_Catalog::products"
STORE_ACL = "Magento_Backend::store"
IMS_TOKEN_PATH = "/ims/token/v3"
NO_ROUTE = "Request does not match any route."


@dataclass
class CommerceFaults(Faults):
    token_lifetime: int = 86399  # IMS tokens live a day


class MockCommerce(CommerceAuth, CommerceResources):
    """Adobe Commerce. PaaS: `/rest/<store>/V1/...` signed with OAuth 1.0a HMAC-SHA256 by the configured consumer
    key/secret and access token/secret. SaaS: IMS token endpoint `/ims/token/v3` for `client_id`/`client_secret`,
    then `/<tenant>/V1/...` with `Authorization: Bearer` and `x-api-key: <client_id>`."""

    system = "commerce"
    faults_class = CommerceFaults

    def __init__(
        self,
        *,
        consumer_key: str = "mock-consumer-key",
        consumer_secret: str = "mock-consumer-secret",  # noqa: S107 - the mock's demo credentials
        access_token: str = "mock-access-token",  # noqa: S107
        access_token_secret: str = "mock-access-token-secret",  # noqa: S107
        client_id: str = "mock-ims-client",
        client_secret: str = "mock-ims-secret",  # noqa: S107
        tenant: str = "mocktenant",
        store_codes: tuple[str, ...] = ("default",),
        max_page_size: int = 300,
        seed: int | None = None,
        **faults: Any,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.store_codes = tuple(store_codes)
        self.max_page_size = max_page_size
        self._resource_table = [(m, re.compile(p + r"\Z"), acl, h) for m, p, acl, h in self._resources()]
        super().__init__(seed=seed, **faults)

    # -- data -----------------------------------------------------------------------------------------------
    def _seed_data(self) -> None:
        self.orders = {o["entity_id"]: o for o in seed_orders()}
        self.invoices = {i["entity_id"]: i for i in seed_invoices()}
        self.creditmemos = {c["entity_id"]: c for c in seed_creditmemos()}
        self.customers = {c["id"]: c for c in seed_customers()}
        self.products = {p["sku"]: p for p in seed_products()}
        self.product_overrides: dict[str, dict[str, dict[str, Any]]] = {}
        self.product_writes: list[dict[str, str]] = []
        self.nonces: set[tuple[str, str, str]] = set()
        self.last_oauth_failure: dict[str, str] = {}

    def add_document(self, kind: str, given: dict[str, Any]) -> dict[str, Any]:
        """Add (or replace, by entity_id) an order, invoice or credit memo, filling ids and timestamps; an update
        moves updated_at so the backfill poll sees it."""
        store = {"orders": self.orders, "invoices": self.invoices, "creditmemos": self.creditmemos}.get(kind)
        if store is None:
            raise MockError(404, f"Documents are orders, invoices or creditmemos, not {kind}.")
        if not isinstance(given, dict):
            raise MockError(400, "A document is a JSON object.")
        with self._lock:
            entity_id = given.get("entity_id") or max(store, default=0) + 1
            try:
                entity_id = int(entity_id)
            except (TypeError, ValueError):
                raise MockError(400, "entity_id is a number.") from None
            now = self._stamp()
            if entity_id in store:
                document = {**store[entity_id], **given}
            elif kind == "orders":
                template = copy.deepcopy(self.orders.get(1) or seed_orders()[0])
                document = {**template, "created_at": now, "status_histories": [], **given}
            else:
                document = {"created_at": now, "items": [], "state": 2, "store_id": 1, **given}
            document["entity_id"] = entity_id
            if "increment_id" not in given and entity_id not in store:
                document["increment_id"] = f"{entity_id:09d}"
            document["updated_at"] = given.get("updated_at") or now
            store[entity_id] = document
            self.counters[f"{kind}_added"] += 1
            return document

    def state(self) -> dict[str, Any]:
        base = super().state()
        with self._lock:
            base.update(
                orders=len(self.orders),
                invoices=len(self.invoices),
                creditmemos=len(self.creditmemos),
                customers=len(self.customers),
                products=len(self.products),
                customers_created=self.counters["customers_created"],
                customers_updated=self.counters["customers_updated"],
                products_created=self.counters["products_created"],
                products_updated=self.counters["products_updated"],
                product_writes=list(self.product_writes),
                oauth_failures=self.counters["oauth_failures"],
                last_oauth_failure=dict(self.last_oauth_failure),
            )
        return base

    # -- routing ---------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Handler]]:
        methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
        return [
            ("POST", IMS_TOKEN_PATH, self.ims_token),
            *[(m, r"/rest/V1/(?P<rest>.+)", self.paas) for m in methods],
            *[(m, r"/rest/(?P<store>[a-z0-9_]+)/V1/(?P<rest>.+)", self.paas) for m in methods],
            *[(m, r"/(?P<tenant>[A-Za-z0-9_-]+)/V1/(?P<rest>.+)", self.saas) for m in methods],
        ]

    def _resources(self) -> list[tuple[str, str, str, Handler]]:
        return [
            ("GET", r"orders/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.orders)),
            ("GET", r"orders", SALES_ACL, self.search_of(lambda: self.orders)),
            ("GET", r"invoices/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.invoices)),
            ("GET", r"invoices", SALES_ACL, self.search_of(lambda: self.invoices)),
            ("GET", r"creditmemo/(?P<id>\d+)", SALES_ACL, self.get_of(lambda: self.creditmemos)),
            ("GET", r"creditmemos", SALES_ACL, self.search_of(lambda: self.creditmemos)),
            ("GET", r"customers/search", CUSTOMER_ACL, self.search_of(lambda: self.customers)),
            ("GET", r"customers/(?P<id>\d+)", CUSTOMER_ACL, self.get_of(lambda: self.customers)),
            ("PUT", r"customers/(?P<id>\d+)", CUSTOMER_ACL, self.update_customer),
            ("POST", r"customers", CUSTOMER_ACL, self.create_customer),
            ("GET", r"products", CATALOG_ACL, self.search_of(lambda: self.products)),
            ("GET", r"products/(?P<sku>[^/]+)", CATALOG_ACL, self.get_product),
            ("PUT", r"products/(?P<sku>[^/]+)", CATALOG_ACL, self.save_product),
            ("POST", r"products", CATALOG_ACL, self.save_product),
            ("GET", r"store/storeConfigs", STORE_ACL, self.store_configs),
        ]

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *super()._control_routes(),
            ("POST", r"/__mock__/(?P<kind>orders|invoices|creditmemos)", self._control_add),
            ("POST", r"/__mock__/scale", self._control_scale),
        ]

    def _control_scale(self, request: MockRequest) -> MockResponse:
        data = request.json()
        try:
            counts = {name: int(data.get(name) or 0) for name in ("products", "customers")}
        except (AttributeError, TypeError, ValueError):
            raise MockError(400, 'Send {"products": N, "customers": N}.') from None
        return json_response(200, self.add_scale(**counts))

    def _control_add(self, request: MockRequest) -> MockResponse:
        data = request.json()
        documents = [
            self.add_document(request.path_args["kind"], d) for d in (data if isinstance(data, list) else [data])
        ]
        return json_response(201, documents if isinstance(data, list) else documents[0])

    def render_error(self, request: MockRequest, error: MockError) -> MockResponse:
        if request.path == IMS_TOKEN_PATH:
            return json_response(
                error.status, {"error": error.code or "server_error", "error_description": error.message}, error.headers
            )
        if error.code.isdigit():  # the Adobe API gateway in front of SaaS
            return json_response(error.status, {"error_code": error.code, "message": error.message}, error.headers)
        parameters = error.parameters if error.parameters is not None else []
        return json_response(error.status, {"message": error.message, "parameters": parameters}, error.headers)

    def _resource(self, request: MockRequest, store: str) -> tuple[str, Handler]:
        rest = request.path_args["rest"]
        allowed = False
        for method, pattern, acl, handler in self._resource_table:
            match = pattern.match(rest)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            request.path_args.update(match.groupdict(), store=store)
            return acl, handler
        if allowed:
            raise MockError(405, NO_ROUTE)
        raise MockError(404, NO_ROUTE)

    def _check_store(self, request: MockRequest, store: str) -> None:
        if store == "all":
            if request.method == "GET":
                raise MockError(400, "Cannot perform GET operation with store code 'all'")
        elif store not in self.store_codes:
            raise MockError(404, "The store that was requested wasn't found. Verify the store and try again.")

    # -- the two entry points: find the resource, authenticate, check the store and the ACL ------------------
    def paas(self, request: MockRequest) -> MockResponse:
        store = request.path_args.get("store") or "default"
        acl, handler = self._resource(request, store)
        self._verify_oauth1(request, acl)
        self._check_store(request, store)
        self.check_forbidden_for(acl)
        return handler(request)

    def saas(self, request: MockRequest) -> MockResponse:
        if request.path_args["tenant"] != self.tenant:
            raise MockError(404, NO_ROUTE)
        self._verify_gateway(request)
        store = request.header("Store") or "default"
        acl, handler = self._resource(request, store)
        self._check_store(request, store)
        self.check_forbidden_for(acl)
        return handler(request)
