"""Reading what a system answered: the JSON of a success, the system's own explanation of a failure, and the
one mapping of an answer (or a failure to get one) to a typed error."""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from core.errors import (
    AuthError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
    ValidationRejectedError,
)
from core.redaction import MASK, redact_text, redact_url

from . import clock

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
VALIDATION_STATUSES = frozenset({400, 409, 412, 422})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - clock.now())


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask known secret values wherever they appear (an endpoint may echo what it was sent)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_error(error: ConnectorError, secrets: Iterable[str]) -> ConnectorError:
    secrets = [s for s in secrets if s]
    if secrets:
        error.message = scrub(error.message, secrets)
        error.args = (error.message,)
        error.body = scrub(error.body, secrets)
        error.hint = scrub(error.hint, secrets)
        error.url = scrub(error.url, secrets)
    return error


# --- mapping answers and failures to errors ----------------------------------------------------------------


def error_payload(response: requests.Response) -> dict[str, Any] | None:
    """The JSON object of an error answer, where a system puts its own explanation; None for any other body."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def text_detail(response: requests.Response) -> str:
    """An error body that is not a JSON object, as one redacted line. An HTML page (a proxy's) says nothing
    useful."""
    text = response.text or ""
    if "html" in response.headers.get("Content-Type", "").lower() or text.lstrip().startswith("<"):
        return ""
    return redact_text(" ".join(text.split()))[:500]


def status_error(
    response: requests.Response,
    *,
    system: str,
    detail: str,
    auth_hint: str = "",
    forbidden_hint: str = "",
) -> ConnectorError | None:
    """The typed error for a non-2xx answer; `detail` is the system's own explanation, already parsed."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    request = response.request
    method = (request.method or "") if request is not None else ""
    url = (request.url or "") if request is not None else (response.url or "")
    common: dict[str, Any] = {"status": status, "method": method, "url": url, "body": response.text}
    said = f": {detail}" if detail else ""
    if status in TRANSIENT_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            message = f"{system} is throttling requests (HTTP 429)"
        elif status == 408:
            message = f"{system} timed out reading the request (HTTP 408)"
        else:
            message = f"{system} is unavailable (HTTP {status})"
        if method.upper() not in SAFE_METHODS and status in (408, 500, 502, 504):
            # A write answered by a gateway timeout or a server error may still complete behind it: the next
            # attempt must look the document up first, as after a dropped connection. (429 and 503 are
            # refusals before any work.)
            return OutcomeUnknownError(
                message + said + ": the write may or may not have taken effect", retry_after=retry_after, **common
            )
        return TransientError(message + said, retry_after=retry_after, **common)
    if status == 401:
        return AuthError(f"{system} refused the credentials (HTTP 401){said}", hint=auth_hint, **common)
    if status == 403:
        return AuthError(
            f"{system} refused access (HTTP 403): the integration user lacks a role or privilege for this{said}",
            hint=forbidden_hint or "Give the integration user the role that grants this resource.",
            **common,
        )
    if status == 404:
        return NotFoundError(f"{system} has no such resource or record (HTTP 404){said}", **common)
    if status in VALIDATION_STATUSES:
        return ValidationRejectedError(f"{system} rejected the request (HTTP {status}){said}", **common)
    if 300 <= status < 400:
        location = redact_url(response.headers.get("Location", ""))
        return PermanentError(
            f"{system} answered with a redirect (HTTP {status}) to {location or 'nowhere'}; redirects are not followed",
            hint="Check the base URL: it must be the system's own address, not one that redirects.",
            **common,
        )
    return PermanentError(f"{system} answered HTTP {status}{said}", **common)


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and everything it wraps (requests -> urllib3 MaxRetryError -> socket errors)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(nested, BaseException):
                todo.append(nested)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))


def _tls_reason(exc: BaseException) -> str:
    import ssl

    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return getattr(cause, "reason", None) or getattr(cause, "strerror", None) or type(cause).__name__
    return "handshake failed"


def exception_error(exc: requests.RequestException, *, system: str, method: str, url: str) -> ConnectorError:
    """Map a failure to talk at all. A write that may have reached the system becomes OutcomeUnknownError."""
    host = urlsplit(url).hostname or "?"
    common: dict[str, Any] = {"method": method, "url": url}
    unsafe = method.upper() not in SAFE_METHODS
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(
            f"TLS error talking to {system} at {host}: {_tls_reason(exc)}",
            hint="The server's certificate or TLS setup was refused: check the URL (https:// to an https port) "
            "and that the certificate is valid for this host.",
            **common,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"{system} host unreachable: timed out connecting to {host}", **common)
    causes = list(_causes(exc))
    if any(isinstance(c, NameResolutionError) for c in causes):
        return TransientError(f"{system} host unreachable: the name {host} could not be resolved (DNS)", **common)
    if any(isinstance(c, NewConnectionError) for c in causes):
        return TransientError(f"{system} host unreachable: connection to {host} refused or failed", **common)
    if isinstance(exc, requests.exceptions.Timeout):
        if unsafe:
            return OutcomeUnknownError(
                f"{system} did not answer in time after the request was sent: the {method} may or may not have "
                "taken effect",
                hint="Look the document up before sending it again.",
                **common,
            )
        return TransientError(f"{system} did not answer in time", **common)
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    ):
        if unsafe:
            return OutcomeUnknownError(
                f"The connection to {system} dropped after the request was sent: the {method} may or may not have "
                "taken effect",
                hint="Look the document up before sending it again.",
                **common,
            )
        return TransientError(f"The connection to {system} dropped", **common)
    return PermanentError(f"{system} request could not be made: {type(exc).__name__}", **common)


def oauth_token_error(
    response: requests.Response,
    *,
    issuer: str,
    bad_client: str,
    bad_scope: str,
) -> ConnectorError | None:
    """Errors of an OAuth 2.0 token endpoint (RFC 6749 section 5.2 `error` codes) in plain words."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    request = response.request
    common: dict[str, Any] = {
        "status": status,
        "method": (request.method or "") if request is not None else "",
        "url": (request.url or "") if request is not None else "",
        "body": response.text,
    }
    code, description = "", ""
    payload = error_payload(response)
    if payload is not None:
        code = str(payload.get("error") or "")
        description = str(payload.get("error_description") or "")
    said = f" ({description})" if description else ""
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        what = "is throttling token requests" if status == 429 else "is unavailable"
        return TransientError(f"{issuer} {what} (HTTP {status})", retry_after=retry_after, **common)
    if code == "invalid_client":
        return AuthError(
            bad_client + said, hint="Copy the client id and secret again from the identity domain.", **common
        )
    if code == "invalid_scope":
        return AuthError(bad_scope + said, **common)
    if code == "unauthorized_client":
        return AuthError(
            f"{issuer} does not allow this client the client-credentials grant{said}",
            hint="Enable the Client Credentials grant type on the application.",
            **common,
        )
    if status == 404:
        return PermanentError(f"{issuer} token URL not found (HTTP 404)", hint="Check the token URL.", **common)
    if status in (400, 401, 403):
        return AuthError(f"{issuer} refused the token request ({code or f'HTTP {status}'}){said}", **common)
    return status_error(response, system=issuer, detail=description)


def json_of(response: requests.Response, *, system: str) -> Any:
    """The JSON of a successful answer (empty body -> {}); anything else is a PermanentError."""
    if response.status_code == 204 or not response.content:
        return {}
    try:
        return response.json()
    except ValueError as exc:
        request = response.request
        raise PermanentError(
            f"{system} answered with a body that is not JSON",
            status=response.status_code,
            method=(request.method or "") if request is not None else "",
            url=(request.url or "") if request is not None else "",
            body=response.text,
        ) from exc
