"""The transport shared by the Fusion and Commerce clients.

- one `requests.Session` per client, explicit `(connect, read)` timeouts, no redirects, no hidden urllib3 retries;
- safe reads (GET/HEAD/OPTIONS) retried a few times with backoff, honouring `Retry-After` up to a cap; a longer
  wait is raised as `TransientError(retry_after=...)` so the pipeline schedules the retry instead of blocking a
  worker; writes are never retried here (the pipeline owns write retries and looks up before re-posting);
- a 401 makes a token-based auth drop its token, fetch a new one and resend once;
- every attempt leaves a redacted excerpt in `exchanges` for the audit trail.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import requests
import requests.auth
from django.conf import settings

from core.errors import ConnectorError, OutcomeUnknownError, TransientError
from core.metrics import http_observe
from core.redaction import excerpt, redact, redact_url, secrets_register

from . import clock
from .addresses import GuardedAdapter
from .answers import SAFE_METHODS, exception_error, scrub, scrub_error

logger = logging.getLogger(__name__)

MAX_TRIES = 3  # attempts of one safe read, the first included
MAX_INLINE_SLEEP = 10.0  # seconds a worker may wait inside the client; longer waits go back to the pipeline
BACKOFF_BASE = 0.5  # seconds; full jitter, doubled per attempt, capped at MAX_INLINE_SLEEP
MAX_EXCHANGES = 50
EXCERPT_CHARS = 2000

# What the mapper of each system returns for an answer: None when it is a success.
ErrorMapper = Callable[[requests.Response], ConnectorError | None]


def http_timeout() -> tuple[float, float]:
    connect, read = settings.CONNECTOR_HTTP_TIMEOUT
    return float(connect), float(read)


def new_session(headers: Mapping[str, str] | None = None) -> requests.Session:
    """A session with no hidden retries (the transport decides what is retried) whose connections check the
    address a host resolves to (core/http/addresses.py)."""
    session = requests.Session()
    # Nothing from the process environment: no proxy variables, no ~/.netrc credentials sent to whatever host
    # they name, no CA bundle variables. A proxy is used only when CONNECTOR_HTTPS_PROXY says so.
    session.trust_env = False
    proxy = settings.CONNECTOR_HTTPS_PROXY
    if proxy:
        session.proxies = {"https": proxy}
    adapter = GuardedAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if headers:
        session.headers.update(headers)
    return session


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
        # The log filter masks these wherever they appear, also in what libraries log (oauthlib at DEBUG).
        secrets_register(self.secrets)
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
        started = clock.now()
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
            http_observe(system=self.system, method=method, url=url, error=exc)
            prepared = exc.request if isinstance(exc.request, requests.PreparedRequest) else None
            failure = scrub_error(exception_error(exc, system=self.system, method=method, url=url), self.secrets)
            self._record(method, url, prepared, None, failure, attempt, clock.now() - started)
            logger.info("%s %s %s failed: %s", self.system, method, redact_url(url), failure.message)
            raise failure from exc
        http_observe(system=self.system, method=method, url=url, status=response.status_code)
        error = mapper(response)
        if error is not None:
            scrub_error(error, self.secrets)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> HTTP %s (attempt %d, %.0f ms)",
                self.system,
                method,
                scrub(
                    redact_url((response.request.url if response.request is not None else None) or url), self.secrets
                ),
                response.status_code,
                attempt,
                (clock.now() - started) * 1000,
            )
        self._record(method, url, response.request, response, error, attempt, clock.now() - started)
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
        clock.sleep(delay)


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
