"""The transport shared by the Fusion and Commerce clients.

- one `requests.Session` per client, explicit `(connect, read)` timeouts, no redirects, no hidden urllib3 retries;
- safe reads (GET/HEAD/OPTIONS) retried a few times with backoff, honouring `Retry-After` up to a cap; a longer
  wait is raised as `TransientError(retry_after=...)` so the pipeline schedules the retry instead of blocking a
  worker; writes are never retried here (the pipeline owns write retries and looks up before re-posting);
- a 401 makes a token-based auth drop its token, fetch a new one and resend once;
- every attempt leaves a redacted excerpt in `exchanges` for the audit trail;
- `TokenStore`: access tokens in the shared cache (Redis in production), fetched by one process at a time.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
import requests.auth
from django.conf import settings
from django.core.cache import BaseCache, caches
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .exceptions import (
    AuthError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
    ValidationRejectedError,
)
from .redaction import MASK, excerpt, redact, redact_text, redact_url

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRIES = 3  # attempts of one safe read, the first included
MAX_INLINE_SLEEP = 10.0  # seconds a worker may wait inside the client; longer waits go back to the pipeline
BACKOFF_BASE = 0.5  # seconds; full jitter, doubled per attempt, capped at MAX_INLINE_SLEEP
MAX_EXCHANGES = 50
EXCERPT_CHARS = 2000
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
VALIDATION_STATUSES = frozenset({400, 409, 412, 422})

# What the mapper of each system returns for an answer: None when it is a success.
ErrorMapper = Callable[[requests.Response], ConnectorError | None]


def _now() -> float:
    """Wall-clock seconds. Token expiry is shared between processes, so it cannot be a monotonic clock."""
    return time.time()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def http_timeout() -> tuple[float, float]:
    connect, read = settings.CONNECTOR_HTTP_TIMEOUT
    return float(connect), float(read)


def new_session(headers: Mapping[str, str] | None = None) -> requests.Session:
    """A session with no hidden retries: the transport decides what is retried."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if headers:
        session.headers.update(headers)
    return session


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
    return max(0.0, when.timestamp() - _now())


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


# --- exchanges (audit excerpts) ----------------------------------------------------------------------------

_RESPONSE_HEADERS = ("Content-Type", "Location", "Retry-After", "Date")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _body_text(body: Any) -> str | bytes | None:
    if body is None or isinstance(body, str | bytes):
        return body
    return f"<{type(body).__name__} body>"


def exchange_of(
    *,
    method: str,
    url: str,
    request: requests.PreparedRequest | None,
    response: requests.Response | None,
    error: ConnectorError | None,
    attempt: int,
    elapsed: float,
    secrets: Iterable[str],
) -> dict[str, Any]:
    """One redacted, truncated request/response excerpt for the audit trail."""
    secrets = list(secrets)
    entry: dict[str, Any] = {
        "method": method,
        "url": scrub(redact_url(request.url if request is not None and request.url else url), secrets),
        "attempt": attempt,
        "elapsed_ms": round(elapsed * 1000),
    }
    if request is not None:
        entry["request_headers"] = redact({k: _text(v) for k, v in request.headers.items()})
        entry["request_body"] = scrub(excerpt(_body_text(request.body), EXCERPT_CHARS), secrets)
    if response is not None:
        entry["status"] = response.status_code
        entry["response_headers"] = {k: response.headers[k] for k in _RESPONSE_HEADERS if k in response.headers}
        entry["response_body"] = scrub(excerpt(response.text, EXCERPT_CHARS), secrets)
    if error is not None:
        entry["error"] = f"{type(error).__name__}: {error.message}"
    return entry


# --- the transport ---------------------------------------------------------------------------------------


@runtime_checkable
class RefreshableAuth(Protocol):
    """An auth whose credential can go stale (a cached access token): on a 401 it is dropped and fetched again."""

    def invalidate(self, request: requests.PreparedRequest | None) -> None: ...


class Transport:
    """Sends requests for one client: timeouts, error mapping, read retries, the 401 refresh, audit excerpts."""

    def __init__(
        self,
        *,
        system: str,
        session: requests.Session,
        error_for: ErrorMapper,
        secrets: Iterable[str] = (),
        exchanges: list[dict[str, Any]] | None = None,
        timeout: tuple[float, float] | None = None,
        max_tries: int = MAX_TRIES,
        max_sleep: float = MAX_INLINE_SLEEP,
    ) -> None:
        self.system = system
        self.session = session
        self.error_for = error_for
        self.secrets = [s for s in secrets if s]
        self.exchanges: list[dict[str, Any]] = exchanges if exchanges is not None else []
        self.timeout = timeout or http_timeout()
        self.max_tries = max(1, max_tries)
        self.max_sleep = max_sleep

    def __repr__(self) -> str:
        return f"<Transport {self.system}>"

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        error_for: ErrorMapper | None = None,
    ) -> requests.Response:
        method = method.upper()
        mapper = error_for or self.error_for
        safe = method in SAFE_METHODS
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                response, error = self._send_once(method, url, params, json, data, headers, auth, mapper, attempt)
            except TransientError as exc:
                if safe and not isinstance(exc, OutcomeUnknownError) and attempt < self.max_tries:
                    self._wait_before_retry(exc, attempt)
                    continue
                raise
            if error is None:
                return response
            if response.status_code == 401 and isinstance(auth, RefreshableAuth):
                if not refreshed:
                    # A token the system no longer accepts (revoked, rotated, clock skew): drop it, fetch a fresh
                    # one and resend once. A 401 means the request was not processed, so this is safe for writes.
                    refreshed = True
                    attempt -= 1
                    auth.invalidate(response.request)
                    continue
                error.message += "; a freshly fetched token was refused as well"
                error.args = (error.message,)
            if safe and isinstance(error, TransientError) and attempt < self.max_tries:
                self._wait_before_retry(error, attempt)
                continue
            raise error

    def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        auth: Any,
        mapper: ErrorMapper,
        attempt: int,
    ) -> tuple[requests.Response, ConnectorError | None]:
        started = _now()
        prepared: requests.PreparedRequest | None = None
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=headers,
                auth=auth,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except ConnectorError as exc:
            # Raised by the auth while preparing the request (token endpoint refused, lock wait too long).
            raise scrub_error(exc, self.secrets)
        except requests.RequestException as exc:
            prepared = exc.request if isinstance(exc.request, requests.PreparedRequest) else None
            failure = scrub_error(exception_error(exc, system=self.system, method=method, url=url), self.secrets)
            self._record(method, url, prepared, None, failure, attempt, _now() - started)
            logger.info("%s %s %s failed: %s", self.system, method, redact_url(url), failure.message)
            raise failure from exc
        error = mapper(response)
        if error is not None:
            scrub_error(error, self.secrets)
        self._record(method, url, response.request, response, error, attempt, _now() - started)
        return response, error

    def _record(
        self,
        method: str,
        url: str,
        request: requests.PreparedRequest | None,
        response: requests.Response | None,
        error: ConnectorError | None,
        attempt: int,
        elapsed: float,
    ) -> None:
        self.exchanges.append(
            exchange_of(
                method=method,
                url=url,
                request=request,
                response=response,
                error=error,
                attempt=attempt,
                elapsed=elapsed,
                secrets=self.secrets,
            )
        )
        del self.exchanges[:-MAX_EXCHANGES]

    def _wait_before_retry(self, error: TransientError, attempt: int) -> None:
        if error.retry_after is not None:
            if error.retry_after > self.max_sleep:
                # Too long to hold a worker: the pipeline schedules the retry at that time instead.
                raise error
            delay = error.retry_after
        else:
            delay = random.uniform(0, min(self.max_sleep, BACKOFF_BASE * 2 ** (attempt - 1)))
        logger.info("%s: retrying a read in %.1f s after: %s", self.system, delay, error.message)
        _sleep(delay)


class SystemClient:
    """What every system's client shares: the auth and transport it was built with, the audit excerpts of its
    calls, and fetching a token ahead of time ("Test connection")."""

    auth: requests.auth.AuthBase
    transport: Transport

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        """Redacted request/response excerpts of the last calls (token requests included), oldest first."""
        return self.transport.exchanges

    def take_exchanges(self) -> list[dict[str, Any]]:
        """The excerpts gathered so far, and start afresh (one audit event per step)."""
        taken = list(self.transport.exchanges)
        self.transport.exchanges.clear()
        return taken

    def ensure_token(self, *, fresh: bool = False) -> None:
        """Obtain an access token now, when the auth uses one (Basic auth and OAuth 1.0a have none). Raises
        AuthError in plain words."""
        ensure = getattr(self.auth, "ensure_token", None)
        if ensure is not None:
            ensure(fresh=fresh)


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


# --- the shared token store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: float

    def __repr__(self) -> str:
        return f"TokenGrant(access_token='{MASK}', expires_in={self.expires_in})"


REFRESH_EARLY_MAX = 300.0  # refresh at most 5 minutes before expiry...
REFRESH_EARLY_FRACTION = 0.1  # ...or 10 % of the lifetime for short-lived tokens
FAILURE_MEMO_SECONDS = 15  # how long a refused token request is remembered, so 20 workers do not all retry it


@dataclass(frozen=True)
class _CachedToken:
    access_token: str
    expires_at: float
    refresh_at: float

    def __repr__(self) -> str:
        return f"_CachedToken(expires_at={self.expires_at}, refresh_at={self.refresh_at})"


def refresh_margin(lifetime: float) -> float:
    return min(REFRESH_EARLY_MAX, max(0.0, lifetime) * REFRESH_EARLY_FRACTION)


def credential_fingerprint(*parts: str) -> str:
    """A short hash of everything that identifies a credential: changing any part (a new secret) changes the key."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:24]


class TokenStore:
    """An access token kept in the shared cache and fetched by one process at a time.

    `get()` returns the cached token until shortly before it expires. When a new one is needed, the caller that
    wins `cache.add(lock)` fetches it; the others keep serving a still-valid token, or poll the cache until the
    new token appears (bounded). A refused fetch is remembered briefly so waiters do not repeat it."""

    def __init__(
        self,
        *,
        name: str,
        owner: str | int | None,
        fingerprint: str,
        fetch: Callable[[], TokenGrant],
        cache: BaseCache | None = None,
        lock_seconds: float | None = None,
        wait_seconds: float | None = None,
        poll_seconds: float = 0.1,
    ) -> None:
        self.name = name
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.key = f"connector:token:{slug}:{owner}:{fingerprint}"
        self.lock_key = f"{self.key}:lock"
        self.failure_key = f"{self.key}:failed"
        self.fetch = fetch
        self.cache = cache if cache is not None else caches["default"]
        connect, read = http_timeout()
        # The lock outlives the slowest possible fetch, so a holder that dies only delays the others this long.
        self.lock_seconds = lock_seconds if lock_seconds is not None else connect + read + 5
        self.wait_seconds = wait_seconds if wait_seconds is not None else self.lock_seconds + 5
        self.poll_seconds = poll_seconds

    def __repr__(self) -> str:
        return f"<TokenStore {self.name}>"

    def _read(self) -> _CachedToken | None:
        entry = self.cache.get(self.key)
        if not isinstance(entry, dict):
            return None
        token, expires_at, refresh_at = entry.get("access_token"), entry.get("expires_at"), entry.get("refresh_at")
        if (
            not isinstance(token, str)
            or not isinstance(expires_at, int | float)
            or not isinstance(refresh_at, int | float)
        ):
            return None
        return _CachedToken(token, float(expires_at), float(refresh_at))

    def get(self, *, fresh: bool = False) -> str:
        """A usable access token. `fresh=True` ignores the cached one (used by "Test connection")."""
        deadline = _now() + self.wait_seconds
        while True:
            entry = None if fresh else self._read()
            if entry is not None and _now() < entry.refresh_at:
                return entry.access_token
            if not fresh:
                self._raise_remembered_failure()
            owner = uuid.uuid4().hex
            if self.cache.add(self.lock_key, owner, timeout=max(1, int(self.lock_seconds))):
                try:
                    return self._fetch_locked(fresh=fresh)
                finally:
                    if self.cache.get(self.lock_key) == owner:
                        self.cache.delete(self.lock_key)
            # Another worker is fetching. A token that has not expired yet is still good meanwhile.
            if entry is not None and _now() < entry.expires_at:
                return entry.access_token
            if _now() >= deadline:
                raise TransientError(
                    f"Waited {self.wait_seconds:.0f} s for another worker to fetch the {self.name} access token"
                )
            _sleep(self.poll_seconds * random.uniform(0.8, 1.2))

    def _fetch_locked(self, *, fresh: bool) -> str:
        if not fresh:
            # Someone may have stored a new token between our read and taking the lock.
            entry = self._read()
            if entry is not None and _now() < entry.refresh_at:
                return entry.access_token
        fetched_at = _now()
        try:
            grant = self.fetch()
        except AuthError as exc:
            self.cache.set(
                self.failure_key,
                {"message": exc.message, "hint": exc.hint, "status": exc.status},
                timeout=FAILURE_MEMO_SECONDS,
            )
            raise
        lifetime = max(1.0, float(grant.expires_in))
        self.cache.set(
            self.key,
            {
                "access_token": grant.access_token,
                "expires_at": fetched_at + lifetime,
                "refresh_at": fetched_at + lifetime - refresh_margin(lifetime),
            },
            timeout=max(1, int(lifetime)),
        )
        self.cache.delete(self.failure_key)
        logger.info("Fetched a new %s access token valid for %.0f s", self.name, lifetime)
        return grant.access_token

    def _raise_remembered_failure(self) -> None:
        failure = self.cache.get(self.failure_key)
        if isinstance(failure, dict):
            raise AuthError(
                str(failure.get("message") or "The token request was refused"),
                hint=str(failure.get("hint") or ""),
                status=failure.get("status"),
            )

    def invalidate(self, access_token: str | None = None) -> None:
        """Drop the cached token; with `access_token`, only when it is still that token (another worker may
        already have replaced it)."""
        if access_token is not None:
            entry = self._read()
            if entry is None or entry.access_token != access_token:
                return
        self.cache.delete(self.key)


def bearer_of(request: requests.PreparedRequest | None) -> str | None:
    """The bearer token a request was sent with."""
    if request is None:
        return None
    value = request.headers.get("Authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:]
    return None


class BearerTokenAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` from a TokenStore; on a 401 the transport calls `invalidate()`."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.store.name}>"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.store.get()}"
        return request

    def invalidate(self, request: requests.PreparedRequest | None) -> None:
        self.store.invalidate(bearer_of(request))

    def ensure_token(self, *, fresh: bool = False) -> None:
        self.store.get(fresh=fresh)


def grant_of(response: requests.Response, *, issuer: str, default_lifetime: float) -> TokenGrant:
    """Read an OAuth 2.0 token answer: `{"access_token": ..., "expires_in": ...}`."""
    payload = json_of(response, system=issuer)
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise PermanentError(
            f"{issuer} answered the token request without an access_token",
            status=response.status_code,
            method="POST",
            url=(response.request.url or "") if response.request is not None else "",
        )
    try:
        lifetime = float(payload.get("expires_in") or default_lifetime)
    except (TypeError, ValueError):
        lifetime = default_lifetime
    return TokenGrant(access_token=token, expires_in=lifetime)


class ClientCredentialsAuth(BearerTokenAuth):
    """Bearer tokens from an OAuth 2.0 client-credentials token endpoint (Fusion's identity domain, Adobe IMS),
    kept in the shared cache per connection and credential. The token endpoint has its own transport, whose
    excerpts go to the client's `exchanges`; a subclass says only how its endpoint wants the request
    (`token_request()`)."""

    def __init__(
        self,
        *,
        name: str,
        issuer: str,
        owner: str | int | None,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        error_for: ErrorMapper,
        default_lifetime: float,
        exchanges: list[dict[str, Any]] | None = None,
    ) -> None:
        self.issuer = issuer
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.default_lifetime = default_lifetime
        self.token_transport = Transport(
            system=issuer,
            session=new_session({"Accept": "application/json"}),
            error_for=error_for,
            secrets=[client_secret],
            exchanges=exchanges,
        )
        store = TokenStore(
            name=name,
            owner=owner,
            # The scope and the secret are part of the key: an edited credential never reuses the old token.
            fingerprint=credential_fingerprint(token_url, client_id, scope, client_secret),
            fetch=self._fetch,
        )
        super().__init__(store)

    def token_request(self) -> tuple[dict[str, str], requests.auth.AuthBase | None]:
        """The form of the token POST and the auth it is sent with: where the client credentials go (HTTP Basic or
        the form) differs per endpoint."""
        raise NotImplementedError

    def _fetch(self) -> TokenGrant:
        form, auth = self.token_request()
        response = self.token_transport.request("POST", self.token_url, data=form, auth=auth)
        return grant_of(response, issuer=self.issuer, default_lifetime=self.default_lifetime)
