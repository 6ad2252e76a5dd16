"""Test connection: for each side, get a token (when the auth needs one) and make one cheap authorised read, then
say in plain words what works or exactly what is wrong. Nothing secret goes into a message. The result is audited
as `connection.tested`.

`connection_test(connection=..., actor=...)` is the service; the `test_connection` command and the admin action
are thin doors onto it."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import ssl
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from audit.models import AuditEvent
from audit.services import audit_record
from commerce.client import CommerceClient
from commerce.search import SearchCriteria
from connector.models import SECRET_FIELDS, Connection
from core.errors import ConnectorError, OutcomeUnknownError, PermanentError, TransientError
from core.http.answers import scrub
from fusion.client import FusionClient

logger = logging.getLogger(__name__)

ACTION = "connection.tested"
FUSION_PROBE = "receivablesInvoices"  # what the connector writes to: reading it proves the AR role
MAX_EXCHANGES_AUDITED = 6


@dataclass(frozen=True)
class SideResult:
    """The outcome for one system. `problem` is "" when ok, else a short code (bad_credentials, bad_scope,
    unreachable, tls, timeout, forbidden, signature_refused, token_refused, api_key_refused, not_found,
    unavailable, rejected, misconfigured, error); `message` says it in plain words, with what to do."""

    system: str
    ok: bool
    message: str
    problem: str = ""
    ledger_currency: str = ""  # Fusion: the currency of the connection's ledger, when it could be read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConnectionTestResult:
    fusion: SideResult
    commerce: SideResult

    @property
    def ok(self) -> bool:
        return self.fusion.ok and self.commerce.ok

    @property
    def sides(self) -> tuple[SideResult, SideResult]:
        return (self.fusion, self.commerce)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "fusion": self.fusion.as_dict(), "commerce": self.commerce.as_dict()}

    def summary(self) -> str:
        return "; ".join(f"{side.system}: {side.message}" for side in self.sides)


# --- reading a failure --------------------------------------------------------------------------------------------


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (ConnectorError <- requests <- urllib3 <- ssl/socket)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        for nested in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nested, BaseException):
                todo.append(nested)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
    return seen


def _where(exc: ConnectorError, fallback: str) -> str:
    parts = urlsplit(exc.url or fallback)
    if not parts.hostname:
        return "the configured address"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _oauth_error_code(exc: ConnectorError) -> str:
    try:
        payload = json.loads(exc.body or "")
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return payload["error"]
    match = re.search(r'"error"\s*:\s*"([a-z_]+)"', exc.body or "")
    return match.group(1) if match else ""


def _connection_failure(exc: ConnectorError, system: str, where: str) -> SideResult | None:
    """Failures to talk at all: TLS, unreachable host, no answer in time."""
    causes = _causes(exc)
    if any(isinstance(c, requests.exceptions.SSLError | ssl.SSLError) for c in causes):
        reason = next(
            (getattr(c, "reason", None) or type(c).__name__ for c in causes if isinstance(c, ssl.SSLError)),
            "handshake failed",
        )
        return SideResult(
            system,
            False,
            f"TLS error: no secure connection could be made to {where} ({reason}). Check that the URL starts with "
            "https:// only for an HTTPS port and that the server's certificate is valid for that host.",
            "tls",
        )
    if any(isinstance(c, NameResolutionError) for c in causes):
        return SideResult(
            system,
            False,
            f"Host unreachable: the name in {where} could not be resolved (DNS). Check the host name in the URL.",
            "unreachable",
        )
    if any(isinstance(c, NewConnectionError | requests.exceptions.ConnectTimeout) for c in causes):
        return SideResult(
            system,
            False,
            f"Host unreachable: nothing accepted a connection at {where} (refused, filtered or down). Check the URL "
            "and port, and that this server may reach that host through the firewall.",
            "unreachable",
        )
    if any(isinstance(c, requests.exceptions.Timeout) for c in causes):
        return SideResult(
            system,
            False,
            f"{where} accepted the connection but did not answer in time. Try again later; if it persists, check "
            "the system's health.",
            "timeout",
        )
    if any(isinstance(c, requests.exceptions.ConnectionError) for c in causes):
        return SideResult(
            system,
            False,
            f"The connection to {where} was dropped before an answer came back. Check the URL and any proxy in "
            "between.",
            "unreachable",
        )
    return None


def _token_failure(exc: ConnectorError, system: str, issuer: str, where: str, scope: str) -> SideResult:
    if exc.status is None:  # no answer to read, e.g. waiting too long for another worker's token request
        return SideResult(system, False, f"{exc.message}. {exc.hint}".strip(), "error")
    code = _oauth_error_code(exc)
    if code == "invalid_client":
        return SideResult(
            system,
            False,
            f"{issuer} refused the client id or client secret (invalid_client). Copy the client id and secret again "
            + (
                "from the identity domain's confidential application"
                if system == "Fusion"
                else "from the OAuth server-to-server credential in the Adobe Developer Console"
            )
            + " and save them on the connection.",
            "bad_credentials",
        )
    if code == "invalid_scope":
        return SideResult(
            system,
            False,
            f"{issuer} refused the scope {scope!r} (invalid_scope). "
            + (
                "Copy the exact scope from the Fusion application's Resources tab in the identity domain."
                if system == "Fusion"
                else "The credential must be granted the scopes, and they must include commerce.accs."
            ),
            "bad_scope",
        )
    if code == "unauthorized_client":
        return SideResult(
            system,
            False,
            f"{issuer} does not allow this client the client-credentials grant. Enable Client Credentials on the "
            "application.",
            "token_refused",
        )
    if exc.status == 404:
        return SideResult(
            system, False, f"The token URL at {where} does not exist (HTTP 404). Check the token URL.", "not_found"
        )
    if isinstance(exc, TransientError):
        return SideResult(
            system,
            False,
            f"{issuer} is unavailable or throttling for now (HTTP {exc.status}). Try again in a few minutes.",
            "unavailable",
        )
    return SideResult(
        system,
        False,
        f"{issuer} refused the token request ({code or f'HTTP {exc.status}'}). Check the client id, secret and "
        "token URL.",
        "token_refused",
    )


def _read_failure(exc: ConnectorError, system: str, what: str, *, on_401: SideResult, on_403: SideResult) -> SideResult:
    if exc.status == 401:
        return on_401
    if exc.status == 403:
        return on_403
    if exc.status == 404:
        return SideResult(
            system,
            False,
            f"The {what} API was not found (HTTP 404): the base URL does not point at {system}'s REST API. "
            "Check the base URL"
            + (" and the store code." if system == "Commerce" else " (the pod's own address, without a path)."),
            "not_found",
        )
    if isinstance(exc, TransientError) and exc.status:
        return SideResult(
            system,
            False,
            f"{system} is unavailable or throttling for now (HTTP {exc.status}). Try again in a few minutes.",
            "unavailable",
        )
    if exc.status:
        return SideResult(
            system, False, f"{system} rejected the test read of {what} (HTTP {exc.status}): {exc.message}", "rejected"
        )
    return SideResult(system, False, f"{exc.message}. {exc.hint}".strip(), "error")


def _failure(exc: ConnectorError, *, system: str, phase: str, fallback_url: str, describe) -> SideResult:
    where = _where(exc, fallback_url)
    talked = _connection_failure(exc, system, where)
    if talked is not None:
        return talked
    if exc.status is None and isinstance(exc, PermanentError) and not isinstance(exc, OutcomeUnknownError):
        # Refused before anything was sent: a URL that is not allowed, a missing secret.
        return SideResult(system, False, f"{exc.message}. {exc.hint}".strip(), "misconfigured")
    return describe(exc, where, phase)


# --- the two sides ------------------------------------------------------------------------------------------------


def _fusion_side(connection: Connection, exchanges: list[dict[str, Any]]) -> SideResult:
    basic = connection.fusion_auth == Connection.FusionAuth.BASIC
    phase = "setup"

    def describe(exc: ConnectorError, where: str, phase: str) -> SideResult:
        if phase == "token":
            return _token_failure(exc, "Fusion", "The identity domain", where, connection.fusion_scope)
        if basic:
            on_401 = SideResult(
                "Fusion",
                False,
                "Fusion refused the username or password (HTTP 401). Check them, and that the user is active and "
                "not locked.",
                "bad_credentials",
            )
        else:
            on_401 = SideResult(
                "Fusion",
                False,
                "Fusion refused the access token the identity domain issued (HTTP 401). Check that the scope is the "
                "Fusion application's resource and that a Fusion user exists for the client id.",
                "token_refused",
            )
        on_403 = SideResult(
            "Fusion",
            False,
            f"Signed in, but the Fusion user lacks a role: reading {FUSION_PROBE} was refused (HTTP 403). Give the "
            "integration user a role with AR_CREATE_RECEIVABLES_INVOICE_PRIV and data access to the business unit.",
            "forbidden",
        )
        return _read_failure(exc, "Fusion", FUSION_PROBE, on_401=on_401, on_403=on_403)

    client = None
    try:
        client = FusionClient.for_connection(connection)
        if not basic:
            phase = "token"
            client.ensure_token(fresh=True)
        phase = "read"
        client.get(FUSION_PROBE, params={"limit": 1, "onlyData": "true", "fields": "CustomerTransactionId"})
        note, currency = _ledger_note(connection, client)
    except ConnectorError as exc:
        fallback = connection.fusion_token_url if phase == "token" else connection.fusion_base_url
        return _failure(exc, system="Fusion", phase=phase, fallback_url=fallback, describe=describe)
    finally:
        if client is not None:
            exchanges.extend(client.exchanges[-MAX_EXCHANGES_AUDITED:])
    how = "signed in with the username and password" if basic else "got a token from the identity domain"
    return SideResult("Fusion", True, f"OK: {how} and read {FUSION_PROBE}.{note}", ledger_currency=currency)


def _ledger_note(connection: Connection, client: FusionClient) -> tuple[str, str]:
    """The ledger's currency from `ledgersLOV`, in words and as a code, and whether it is the one the connection
    takes documents to be converted to. A ledger that cannot be read does not fail the test."""
    if not connection.ledger_id:
        return " No ledger id is set, so the ledger currency was not read from Fusion.", ""
    try:
        ledger = client.ledger(connection.ledger_id)
    except ConnectorError as exc:
        return (
            f" The ledger {connection.ledger_id} could not be read from ledgersLOV "
            f"({f'HTTP {exc.status}' if exc.status else exc.message}); the connection's currency "
            f"{connection.currency or '(none)'} is taken as the ledger currency.",
            "",
        )
    if not ledger.currency:
        return f" ledgersLOV gave no currency for the ledger {connection.ledger_id}.", ""
    note = f" The ledger {ledger.name or ledger.ledger_id} is in {ledger.currency}."
    if connection.currency != ledger.currency:
        note += (
            f" The connection's currency is {connection.currency or '(none)'}: set it to {ledger.currency}, the "
            "currency documents are converted to."
        )
    return note, ledger.currency


def _commerce_side(connection: Connection, exchanges: list[dict[str, Any]]) -> SideResult:
    saas = connection.commerce_deployment == Connection.Deployment.SAAS
    phase = "setup"

    def describe(exc: ConnectorError, where: str, phase: str) -> SideResult:
        if phase == "token":
            return _token_failure(exc, "Commerce", "Adobe IMS", where, connection.commerce_scopes)
        if saas:
            on_401 = SideResult(
                "Commerce",
                False,
                "Commerce refused the IMS access token (HTTP 401). Check that the credential belongs to this "
                "tenant's organisation and is granted the Commerce API.",
                "token_refused",
            )
            if "api key" in exc.message.lower():
                on_403 = SideResult(
                    "Commerce",
                    False,
                    "The Adobe API gateway refused the API key (HTTP 403): x-api-key must be the credential's client "
                    "id. Check the client id on the connection.",
                    "api_key_refused",
                )
            else:
                on_403 = SideResult(
                    "Commerce",
                    False,
                    "Signed in, but the credential may not read orders (HTTP 403). Give it the Commerce role that "
                    "covers sales.",
                    "forbidden",
                )
        else:
            on_401 = SideResult(
                "Commerce",
                False,
                "Commerce refused the OAuth1 signature (HTTP 401). Check the consumer key and secret and the "
                "access token and secret of an active integration, and that the base URL is exactly the store's own "
                "address (the signature covers scheme, host, port and path).",
                "signature_refused",
            )
            on_403 = SideResult(
                "Commerce",
                False,
                "The signature was accepted, but the integration may not read orders (HTTP 403). Grant it the Sales "
                "API resources (Magento_Sales::actions_view) in System > Extensions > Integrations.",
                "forbidden",
            )
        return _read_failure(exc, "Commerce", "orders", on_401=on_401, on_403=on_403)

    client = None
    try:
        client = CommerceClient.for_connection(connection)
        if saas:
            phase = "token"
            client.ensure_token(fresh=True)
        phase = "read"
        client.get("orders", params=SearchCriteria(page_size=1).to_params())
    except ConnectorError as exc:
        fallback = connection.commerce_ims_token_url if phase == "token" else connection.commerce_base_url
        return _failure(exc, system="Commerce", phase=phase, fallback_url=fallback, describe=describe)
    finally:
        if client is not None:
            exchanges.extend(client.exchanges[-MAX_EXCHANGES_AUDITED:])
    how = "got a token from Adobe IMS" if saas else "Commerce accepted the OAuth1 (HMAC-SHA256) signature"
    return SideResult(
        "Commerce", True, f"OK: {how} and orders were read (store view {connection.commerce_store_code})."
    )


def _guarded(system: str, test: Callable[[], SideResult]) -> SideResult:
    try:
        return test()
    except Exception as exc:  # a defect, not a connection problem: say so without echoing anything secret
        logger.exception("Test connection of %s failed unexpectedly", system)
        return SideResult(
            system, False, f"The test itself failed unexpectedly ({type(exc).__name__}); see the server log.", "error"
        )


def _secrets_of(connection: Connection) -> Iterable[str]:
    return [str(getattr(connection, name) or "") for name in SECRET_FIELDS]


def _clean(result: SideResult, secrets: Iterable[str]) -> SideResult:
    return dataclasses.replace(result, message=scrub(result.message, secrets))


# --- the service --------------------------------------------------------------------------------------------------


def connection_test(*, connection: Connection, actor: Any) -> ConnectionTestResult:
    """Check both systems of a connection and audit the outcome (`connection.tested`)."""
    secrets = list(_secrets_of(connection))
    fusion_exchanges: list[dict[str, Any]] = []
    commerce_exchanges: list[dict[str, Any]] = []
    fusion = _clean(_guarded("Fusion", lambda: _fusion_side(connection, fusion_exchanges)), secrets)
    commerce = _clean(_guarded("Commerce", lambda: _commerce_side(connection, commerce_exchanges)), secrets)
    result = ConnectionTestResult(fusion=fusion, commerce=commerce)
    audit_record(
        action=ACTION,
        actor=actor,
        connection=connection,
        target=connection,
        outcome=AuditEvent.Outcome.SUCCESS if result.ok else AuditEvent.Outcome.FAILURE,
        message=result.summary(),
        data={**result.as_dict(), "exchanges": {"fusion": fusion_exchanges, "commerce": commerce_exchanges}},
    )
    logger.info("Tested connection %s: %s", connection.slug, result.summary(), extra={"connection_id": connection.pk})
    return result
