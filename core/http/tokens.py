"""Access tokens shared by every process: `TokenStore` keeps a token in the shared cache (Redis in production)
and lets one process at a time fetch a new one; `ClientCredentialsAuth` gets them from an OAuth 2.0
client-credentials endpoint (Fusion's identity domain, Adobe IMS)."""

from __future__ import annotations

import hashlib
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import requests.auth
from django.core.cache import BaseCache, caches

from core.errors import AuthError, PermanentError, TransientError
from core.redaction import MASK, secrets_register

from . import clock
from .answers import json_of
from .transport import ErrorMapper, Transport, http_timeout, new_session

logger = logging.getLogger(__name__)


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
        deadline = clock.now() + self.wait_seconds
        while True:
            entry = None if fresh else self._read()
            if entry is not None and clock.now() < entry.refresh_at:
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
            if entry is not None and clock.now() < entry.expires_at:
                return entry.access_token
            if clock.now() >= deadline:
                raise TransientError(
                    f"Waited {self.wait_seconds:.0f} s for another worker to fetch the {self.name} access token"
                )
            clock.sleep(self.poll_seconds * random.uniform(0.8, 1.2))

    def _fetch_locked(self, *, fresh: bool) -> str:
        if not fresh:
            # Someone may have stored a new token between our read and taking the lock.
            entry = self._read()
            if entry is not None and clock.now() < entry.refresh_at:
                return entry.access_token
        fetched_at = clock.now()
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
        token = self.store.get()
        secrets_register((token,))  # masked in every log line from now on
        request.headers["Authorization"] = f"Bearer {token}"
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
