"""The Oracle Fusion REST client, built from a connection. URLs come only from the validated base plus
`/<context root>/resources/<version>/<resource>`; links are followed on the same origin only."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

from connector.models import Connection
from core import endpoints
from core.errors import ConnectorError, PermanentError
from core.http.answers import error_payload, json_of, status_error, text_detail
from core.http.transport import SystemClient, Transport, new_session
from core.redaction import redact_text, redact_url

from . import sources
from .answers import DocumentTax, EssJob, ImportJob, Ledger, ReceivablesDocument
from .auth import FusionBasicAuth, fusion_auth_for
from .query import fields_param, q_expr
from .query import order_by as order_by_param

logger = logging.getLogger(__name__)

SYSTEM = "Fusion"
REST_FRAMEWORK_VERSION = "4"
MAX_PAGE_SIZE = 500
HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/json",
    "REST-Framework-Version": REST_FRAMEWORK_VERSION,
}
CONTEXT_ROOTS = ("fscmRestApi", "crmRestApi")
RECEIVABLES_LOOKUP_FIELDS = "CustomerTransactionId,TransactionNumber,TransactionSource,BusinessUnit,CrossReference"
# A document's lines and their tax lines, per Receivables resource (fusion.md §11.5: expand=Child.NestedChild).
RECEIVABLES_TAX_CHILDREN = {
    "receivablesInvoices": ("receivablesInvoiceLines", "receivablesInvoiceLineTaxLines"),
    "receivablesCreditMemos": ("receivablesCreditMemoLines", "receivablesCreditMemoLineTaxLines"),
}
_VERSION = re.compile(r"^(\d+(\.\d+)*|latest)$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-.~$@,=:]+$")
_PRIVILEGE_HINTS = {
    "receivablesInvoices": "AR_CREATE_RECEIVABLES_INVOICE_PRIV",
    "receivablesCustomerAccountSiteActivities": "AR_REVIEW_CUSTOMER_ACCOUNT_ACTIVITIES_PRIV",
}


def fusion_error_detail(response: requests.Response) -> str:
    """Fusion's own explanation: `o:errorDetails[].detail` (REST-Framework-Version 4+), else `detail` or `title`,
    else the plain-text body (versions 1-3). An HTML error page (a proxy's) says nothing useful."""
    payload = error_payload(response)
    if payload is None:
        return text_detail(response)
    details = payload.get("o:errorDetails")
    parts: list[str] = []
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and str(item.get("detail") or "").strip():
                part = str(item["detail"]).strip()
                code = str(item.get("o:errorCode") or "").strip()
                parts.append(f"{part} ({code})" if code and code not in part else part)
    if parts:
        return redact_text("; ".join(parts))[:1000]
    for key in ("detail", "title", "message"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return redact_text(value.strip())[:1000]
    return ""


def _resource_of(response: requests.Response) -> str:
    url = response.request.url if response.request is not None else response.url
    parts = urlsplit(url or "").path.split("/")
    if "resources" in parts:
        after = parts[parts.index("resources") + 2 :]
        return after[0] if after else ""
    return ""


def fusion_error(response: requests.Response, *, basic_auth: bool = False) -> ConnectorError | None:
    """The one function that maps a Fusion answer to a typed error (None for a success)."""
    if 200 <= response.status_code < 300:
        return None
    resource = _resource_of(response)
    privilege = _PRIVILEGE_HINTS.get(resource)
    forbidden_hint = (
        f"Give the Fusion integration user a role with the privilege for {resource or 'this resource'}"
        + (f" ({privilege})" if privilege else "")
        + ", and data access to the business unit."
    )
    auth_hint = (
        "Fusion refused the username or password: check them, and that the user is active and not locked."
        if basic_auth
        else "Fusion refused the identity domain's token: check the scope (the Fusion application's resource) "
        "and that a Fusion user exists for the client id, with its roles."
    )
    return status_error(
        response,
        system=SYSTEM,
        detail=fusion_error_detail(response),
        auth_hint=auth_hint,
        forbidden_hint=forbidden_hint,
    )


class FusionApi(Protocol):
    """What the flows call Fusion through: the client itself, or the client paced by the connection's call
    ceiling (fusion.throttle.PacedClient)."""

    @property
    def exchanges(self) -> list[dict[str, Any]]: ...

    def take_exchanges(self) -> list[dict[str, Any]]: ...

    def ensure_token(self, *, fresh: bool = False) -> None: ...

    def get(self, resource: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def iter_items(
        self,
        resource: str,
        *,
        q: str | None = None,
        order_by: str,
        fields: str | None = None,
        page_size: int = ...,
        params: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def find_receivables(
        self, resource: str, *, number: str, source: str, business_unit: str
    ) -> list[ReceivablesDocument]: ...

    def create_receivables(self, resource: str, payload: dict[str, Any]) -> ReceivablesDocument: ...

    def receivables_tax(self, resource: str, transaction_id: str) -> DocumentTax: ...

    def ledger(self, ledger_id: str) -> Ledger: ...

    def import_bulk_data(self, payload: dict[str, Any]) -> ImportJob: ...

    def ess_job_status(self, request_id: str) -> EssJob: ...

    def item_changes(
        self, *, organization: str, stamp: str, since: datetime | None, fields: tuple[str, ...] = ()
    ) -> Iterator[sources.FusionItem]: ...

    def items_numbered(
        self, *, organization: str, item_number: str, stamp: str, fields: tuple[str, ...] = ()
    ) -> list[sources.FusionItem]: ...

    def customer_sites(
        self, *, fields: tuple[str, ...] = (), account_number: str | None = None
    ) -> Iterator[sources.CustomerSite]: ...


class FusionClient(SystemClient):
    """One connection's Fusion REST API. Build it with `FusionClient.for_connection(connection)`.
    `exchanges`, `take_exchanges()` and `ensure_token()` come from SystemClient."""

    def __init__(self, *, base_url: str, version: str, auth: AuthBase, transport: Transport) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.auth = auth
        self.transport = transport

    def __repr__(self) -> str:
        return f"<FusionClient {self.base_url}>"

    @classmethod
    def for_connection(cls, connection: Connection) -> FusionClient:
        base_url = endpoints.checked_url(
            endpoints.validate_fusion_base_url,
            connection.fusion_base_url,
            hint="Fix the Fusion base URL of the connection.",
        )
        version = connection.fusion_rest_version or "11.13.18.05"
        if not _VERSION.match(version):
            raise PermanentError(f"{version!r} is not a Fusion REST version (e.g. 11.13.18.05).")
        exchanges: list[dict[str, Any]] = []
        auth = fusion_auth_for(connection, exchanges=exchanges)
        secrets = [connection.fusion_client_secret or "", connection.fusion_password or ""]
        transport = Transport(
            system=SYSTEM,
            session=new_session(HEADERS),
            error_for=partial(fusion_error, basic_auth=isinstance(auth, FusionBasicAuth)),
            secrets=secrets,
            exchanges=exchanges,
        )
        return cls(base_url=base_url, version=version, auth=auth, transport=transport)

    # --- URLs ------------------------------------------------------------------------------------------

    def url_for(self, resource: str) -> str:
        """`receivablesInvoices/123` -> `{base}/fscmRestApi/resources/{version}/receivablesInvoices/123`;
        `crmRestApi/accounts` -> `{base}/crmRestApi/resources/{version}/accounts`."""
        if not isinstance(resource, str) or not resource:
            raise PermanentError("A Fusion resource name is required.")
        if any(bad in resource for bad in ("://", "..", "?", "#", "\\")) or any(c.isspace() for c in resource):
            raise PermanentError(f"Refusing the Fusion resource {redact_url(resource)!r}: not a resource path.")
        segments = resource.split("/")
        root = "fscmRestApi"
        if segments[0] in CONTEXT_ROOTS:
            root = segments.pop(0)
        if not segments or not all(s and s != "." and _SEGMENT.match(s) for s in segments):
            raise PermanentError(f"Refusing the Fusion resource {resource!r}: not a resource path.")
        path = "/".join(quote(s, safe="$@,=:~-._") for s in segments)
        return f"{self.base_url}/{root}/resources/{self.version}/{path}"

    # --- calls -----------------------------------------------------------------------------------------

    def _call(self, method: str, url: str, *, params: dict[str, Any] | None = None, json: Any = None) -> dict[str, Any]:
        response = self.transport.request(method, url, params=params, json=json, auth=self.auth)
        body = json_of(response, system=SYSTEM)
        if not isinstance(body, dict):
            raise PermanentError(
                f"Fusion answered with a JSON {type(body).__name__}, expected an object",
                status=response.status_code,
                method=method,
                url=url,
                body=response.text,
            )
        return body

    def get(self, resource: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a resource; retried on transient failures (with backoff, honouring Retry-After)."""
        return self._call("GET", self.url_for(resource), params=params)

    def post(self, resource: str, json: dict[str, Any]) -> dict[str, Any]:
        """POST (create). Never retried here: a timeout or dropped connection after sending raises
        OutcomeUnknownError, and the caller looks the document up before trying again."""
        return self._call("POST", self.url_for(resource), json=json)

    def iter_items(
        self,
        resource: str,
        *,
        q: str | None = None,
        order_by: str,
        fields: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        params: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, page by page (`limit`/`offset`, `onlyData=true`), until `hasMore` is false.
        `order_by` must name a unique attribute last, so paging is stable."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1.")
        query: dict[str, Any] = dict(params or {})
        if q:
            query["q"] = q
        query["orderBy"] = order_by_param(order_by)
        if fields:
            query["fields"] = fields_param(fields)
        query["onlyData"] = "true"
        query["limit"] = min(page_size, MAX_PAGE_SIZE)
        url = self.url_for(resource)
        offset = 0
        while True:
            query["offset"] = offset
            page = self._call("GET", url, params=query)
            items = page.get("items")
            if not isinstance(items, list):
                raise PermanentError(f"Fusion answered {resource} without an items list", method="GET", url=url)
            yield from items
            if not page.get("hasMore"):
                return
            if not items:
                logger.warning("Fusion said hasMore on an empty page of %s at offset %s; stopping", resource, offset)
                return
            offset += len(items)

    # --- Receivables and ERP integrations ----------------------------------------------------------------

    def find_receivables(
        self, resource: str, *, number: str, source: str, business_unit: str
    ) -> list[ReceivablesDocument]:
        """The `receivablesInvoices` or `receivablesCreditMemos` documents with this TransactionNumber in this
        source and business unit (Fusion's `q` compares loosely: rows with another number are dropped)."""
        q = q_expr(
            ("TransactionNumber", "=", number), ("TransactionSource", "=", source), ("BusinessUnit", "=", business_unit)
        )
        answer = self.get(resource, params={"q": q, "onlyData": "true", "fields": RECEIVABLES_LOOKUP_FIELDS})
        rows = [row for row in answer.get("items") or [] if isinstance(row, dict)]
        return [ReceivablesDocument.from_row(row) for row in rows if str(row.get("TransactionNumber")) == number]

    def create_receivables(self, resource: str, payload: dict[str, Any]) -> ReceivablesDocument:
        """POST one invoice or credit memo. Never retried here: a lost answer raises OutcomeUnknownError."""
        answer = self.post(resource, json=payload)
        if answer.get("CustomerTransactionId") in (None, ""):
            raise PermanentError("Fusion accepted the document but returned no CustomerTransactionId")
        document = ReceivablesDocument.from_row(answer)
        if not document.transaction_number:
            document = ReceivablesDocument(document.transaction_id, str(payload.get("TransactionNumber") or ""))
        return document

    def receivables_tax(self, resource: str, transaction_id: str) -> DocumentTax:
        """The tax Fusion holds on one invoice or credit memo: the document with its lines and their tax lines
        (`expand=<lines>.<tax lines>`; `fields` would switch the expansion off), summed."""
        lines, tax_lines = RECEIVABLES_TAX_CHILDREN[resource]
        answer = self.get(f"{resource}/{transaction_id}", params={"expand": f"{lines}.{tax_lines}", "onlyData": "true"})
        return DocumentTax.from_answer(transaction_id, answer, lines=lines, tax_lines=tax_lines)

    def ledger(self, ledger_id: str) -> Ledger:
        """One ledger of `ledgersLOV` by its id: its name and currency."""
        answer = self.get(f"ledgersLOV/{ledger_id}", params={"onlyData": "true"})
        return Ledger.from_row(answer)

    def import_bulk_data(self, payload: dict[str, Any]) -> ImportJob:
        """`erpintegrations` `importBulkData`: upload a file and start its import; the answer names the ESS job."""
        return ImportJob.from_answer(self.post("erpintegrations", json=payload))

    def ess_job_status(self, request_id: str) -> EssJob:
        answer = self.get("erpintegrations", params={"finder": f"ESSJobStatusRF;requestId={request_id}"})
        return EssJob.from_answer(request_id, answer)

    # --- Master data for the sync from Fusion (fusion.sources) ---------------------------------------------

    def item_changes(
        self, *, organization: str, stamp: str, since: datetime | None, fields: tuple[str, ...] = ()
    ) -> Iterator[sources.FusionItem]:
        """itemsV2 items of the organisation changed at or after `since`, oldest first, keyset-paged."""
        return sources.item_changes(self.get, organization=organization, stamp=stamp, since=since, fields=fields)

    def items_numbered(
        self, *, organization: str, item_number: str, stamp: str, fields: tuple[str, ...] = ()
    ) -> list[sources.FusionItem]:
        return sources.items_numbered(
            self.get, organization=organization, item_number=item_number, stamp=stamp, fields=fields
        )

    def customer_sites(
        self, *, fields: tuple[str, ...] = (), account_number: str | None = None
    ) -> Iterator[sources.CustomerSite]:
        """customerAccountSitesLOV rows (all, or one account's), by AccountNumber then SiteUseId."""
        return sources.customer_sites(self.get, fields=fields, account_number=account_number)
