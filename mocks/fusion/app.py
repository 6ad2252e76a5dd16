"""The mock Oracle Fusion Cloud ERP server: the identity domain's token endpoint and the fscmRestApi resources
the connector uses, on one port, with in-memory data. For tests and demos only, never for production.

Resources live under `/fscmRestApi/resources/11.13.18.05/<resource>` and answer the REST framework's
`items/count/hasMore/limit/offset/links` envelope; errors are JSON with `o:errorDetails` when the client sends
`REST-Framework-Version: 4` (plain text below it) and OAuth's `error`/`error_description` on the token
endpoint. Use it in-process (`MockFusion().start()`) or as a process
(`CONNECTOR_MOCKS=1 python manage.py mock_fusion --port 8801`).

The handlers live by resource area in the mixins this class combines: auth (token, API checks), rest (what
every resource answers alike), reference (account combinations, customer sites, items), receivables (invoices
and credit memos, with the tax, freight and currency shapes of shapes) and erp (erpintegrations import jobs)."""

from __future__ import annotations

from typing import Any

from mocks.fusion.auth import TokenAuth
from mocks.fusion.erp import ErpIntegrations, ErpJob, FusionFaults
from mocks.fusion.query import Collection
from mocks.fusion.receivables import Receivables
from mocks.fusion.reference import ReferenceData
from mocks.fusion.seed import (
    CREDIT_MEMO_ATTRIBUTES,
    CREDIT_MEMO_CHILDREN,
    INVOICE_ATTRIBUTES,
    INVOICE_CHILDREN,
    SEED_COMBINATIONS,
    SEED_CUSTOMER_SITES,
    SEED_ITEMS,
    SEED_LEDGERS,
)
from mocks.server import Handler, MockError, MockRequest, MockResponse, json_response

TOKEN_PATH = "/oauth2/v1/token"
ERROR_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class MockFusion(TokenAuth, ReferenceData, Receivables, ErpIntegrations):
    """Oracle Fusion: OAuth 2.0 token endpoint (identity domain) and fscmRestApi resources, one server.

    Credentials: `client_id`/`client_secret` (HTTP Basic on the token endpoint), `scope` (the exact scope the
    token request must carry) and optionally `basic_users` ({username: password}) to accept Basic auth on API
    calls. Fusion-specific faults: `ess_running_polls`, `ess_error`."""

    system = "fusion"
    faults_class = FusionFaults
    faults: FusionFaults

    def __init__(
        self,
        *,
        client_id: str = "mock-fusion-client",
        client_secret: str = "mock-fusion-secret",  # noqa: S107 - the mock's demo credential
        scope: str = "urn:opc:resource:consumer::all",
        basic_users: dict[str, str] | None = None,
        seed: int | None = None,
        **faults: Any,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.basic_users = dict(basic_users or {})
        super().__init__(seed=seed, **faults)

    # -- data -----------------------------------------------------------------------------------------------
    def _seed_data(self) -> None:
        self.invoices = Collection(
            "receivablesInvoices", "CustomerTransactionId", INVOICE_ATTRIBUTES, children=INVOICE_CHILDREN
        )
        self.credit_memos = Collection(
            "receivablesCreditMemos", "CustomerTransactionId", CREDIT_MEMO_ATTRIBUTES, children=CREDIT_MEMO_CHILDREN
        )
        combos = [dict(c) for c in SEED_COMBINATIONS]
        self.combinations = Collection(
            "accountCombinationsLOV",
            "_CODE_COMBINATION_ID",
            tuple(combos[0]),
            {str(c["_CODE_COMBINATION_ID"]): c for c in combos},
        )
        sites = [dict(s) for s in SEED_CUSTOMER_SITES]
        self.customer_sites = Collection(
            "customerAccountSitesLOV", "SiteUseId", tuple(sites[0]), {str(s["SiteUseId"]): s for s in sites}
        )
        ledgers = [dict(row) for row in SEED_LEDGERS]
        self.ledgers = Collection("ledgersLOV", "LedgerId", tuple(ledgers[0]), {str(r["LedgerId"]): r for r in ledgers})
        items = [dict(i, itemsV2UniqID=self._item_key(i)) for i in SEED_ITEMS]
        self.items = Collection("itemsV2", "itemsV2UniqID", tuple(items[0]), {i["itemsV2UniqID"]: i for i in items})
        self.erp_jobs: dict[str, ErpJob] = {}
        self._next_transaction_id = 300100170996400
        self._next_request_id = 51000

    def state(self) -> dict[str, Any]:
        base = super().state()
        with self._lock:
            base.update(
                invoices_created=self.counters["invoices_created"],
                credit_memos_created=self.counters["credit_memos_created"],
                invoices=len(self.invoices.rows),
                credit_memos=len(self.credit_memos.rows),
                rejected_creates=self.counters["rejected_creates"],
                rejected_tokens=self.counters["rejected_tokens"],
                erp_jobs={
                    k: {
                        "status": j.last_status,
                        "rows": len(j.rows),
                        "imported_rows": j.imported_rows,
                        "polls": j.polls,
                        "reasons": j.reasons,
                    }
                    for k, j in self.erp_jobs.items()
                },
            )
        return base

    # -- routing ---------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Handler]]:
        v = r"/fscmRestApi/resources/(?P<version>[^/]+)"
        return [
            ("POST", TOKEN_PATH, self.token),
            ("GET", rf"{v}/receivablesInvoices", self._api(self.list_invoices)),
            ("POST", rf"{v}/receivablesInvoices", self._api(self.create_invoice)),
            ("GET", rf"{v}/receivablesInvoices/(?P<id>[^/]+)", self._api(self.get_invoice)),
            ("PATCH", rf"{v}/receivablesInvoices/(?P<id>[^/]+)", self._api(self.patch_invoice)),
            ("GET", rf"{v}/receivablesCreditMemos", self._api(self.list_credit_memos)),
            ("POST", rf"{v}/receivablesCreditMemos", self._api(self.create_credit_memo)),
            ("GET", rf"{v}/receivablesCreditMemos/(?P<id>[^/]+)", self._api(self.get_credit_memo)),
            ("GET", rf"{v}/accountCombinationsLOV/describe", self._api(self.describe_combinations)),
            ("GET", rf"{v}/accountCombinationsLOV", self._api(self.list_combinations)),
            ("GET", rf"{v}/accountCombinationsLOV/(?P<id>[^/]+)", self._api(self.get_row(lambda: self.combinations))),
            ("GET", rf"{v}/customerAccountSitesLOV", self._api(self.list_of(lambda: self.customer_sites))),
            (
                "GET",
                rf"{v}/customerAccountSitesLOV/(?P<id>[^/]+)",
                self._api(self.get_row(lambda: self.customer_sites)),
            ),
            ("GET", rf"{v}/ledgersLOV", self._api(self.list_of(lambda: self.ledgers))),
            ("GET", rf"{v}/ledgersLOV/(?P<id>[^/]+)", self._api(self.get_row(lambda: self.ledgers))),
            ("GET", rf"{v}/itemsV2", self._api(self.list_of(lambda: self.items))),
            ("GET", rf"{v}/itemsV2/(?P<id>[^/]+)", self._api(self.get_row(lambda: self.items))),
            ("POST", rf"{v}/erpintegrations", self._api(self.erp_post)),
            ("GET", rf"{v}/erpintegrations", self._api(self.erp_get)),
        ]

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *super()._control_routes(),
            ("POST", r"/__mock__/rows/(?P<resource>[A-Za-z0-9]+)", self._control_rows),
            ("POST", r"/__mock__/scale", self._control_scale),
            ("GET", r"/__mock__/erp_jobs/(?P<id>[0-9]+)", self._control_erp_job),
            ("POST", r"/__mock__/expire_tokens", self._control_expire_tokens),
        ]

    def _control_expire_tokens(self, request: MockRequest) -> MockResponse:
        self.expire_tokens()
        return json_response(200, {"expired": True})

    def _control_rows(self, request: MockRequest) -> MockResponse:
        data = request.json()
        rows = data if isinstance(data, list) else [data]
        return json_response(201, {"items": self.add_rows(request.path_args["resource"], rows)})

    def _control_scale(self, request: MockRequest) -> MockResponse:
        data = request.json()
        try:
            counts = {name: int(data.get(name) or 0) for name in ("items", "customer_accounts")}
        except (AttributeError, TypeError, ValueError):
            raise MockError(400, 'Send {"items": N, "customer_accounts": N, "replace": false}.') from None
        return json_response(200, self.add_scale(**counts, replace=data.get("replace") is True))

    def _control_erp_job(self, request: MockRequest) -> MockResponse:
        return json_response(200, self.erp_job_details(request.path_args["id"]))

    def render_error(self, request: MockRequest, error: MockError) -> MockResponse:
        """V4+ answers JSON with o:errorDetails; older framework versions answer plain text, as Fusion does."""
        headers = dict(error.headers)
        if request.path == TOKEN_PATH:
            oauth = {"error": error.code or "server_error", "error_description": error.message}
            return json_response(error.status, oauth, headers)
        try:
            version = int(request.header("REST-Framework-Version") or 1)
        except ValueError:
            version = 1
        if version < 4:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return MockResponse(error.status, error.message.encode("utf-8"), headers)
        body: dict[str, Any] = {
            "type": "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
            "title": ERROR_TITLES.get(error.status, "Error"),
            "status": str(error.status),
            "o:errorDetails": [
                {"detail": error.message, "o:errorCode": error.code or None, "o:errorPath": error.parameters}
            ],
        }
        return json_response(error.status, body, headers)
