"""The one place that decides what a secret looks like. Everything logged, audited, stored or raised goes
through redact() first."""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"

_SECRET_WORDS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "apikey",
    "api-key",
    "api_key",
    "x-api-key",
    "private",
    "credential",
    "assertion",
    "session",
)
# "key" alone is too broad for field names like "key_id" or "idempotency"; match it as a word part.
_KEY_RE = re.compile(r"(^|[_\-.])key($|[_\-.s])", re.IGNORECASE)
# user:password@ in a URL written inside free text (log messages, exception texts).
_URL_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")
# A credential after the scheme word is at least 8 characters, so prose like "OAuth 1.0a" stays readable.
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic|oauth)\s+(?=[A-Za-z0-9._~+/=\-,\"]{8,})[A-Za-z0-9._~+/=\-,\"]+")
_INLINE_SECRET_RE = re.compile(
    r"(?i)\b(access_token|refresh_token|client_secret|password|oauth_signature|oauth_token|"
    r"id_token|api_key|secret)(\"?\s*[:=]\s*\"?)([^\s\"&,}]+)"
)

# Every pattern above needs one of these in the text: one search decides most texts hold nothing to mask.
_MAYBE_SECRET_RE = re.compile(
    r"(?i)://|bearer|basic|oauth|access_token|refresh_token|client_secret|password|id_token|api_key|secret"
)


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    if lowered in {"public_key", "public_keys", "key_id", "keyid", "kid", "max_tokens"}:
        return False
    return any(word in lowered for word in _SECRET_WORDS) or bool(_KEY_RE.search(lowered))


def redact_text(text: str) -> str:
    if not _MAYBE_SECRET_RE.search(text):
        return text
    text = _URL_USERINFO_RE.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _INLINE_SECRET_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def redact_url(url: str) -> str:
    """Drop user:password from the authority and mask secret-looking query parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*'=,;:$ ")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(value: Any, *, depth: int = 0) -> Any:
    """Return a copy of value with secrets masked: dict keys that name a secret, header values, URLs and
    bearer/basic credentials inside strings."""
    if depth > 20:
        return MASK
    if isinstance(value, Mapping):
        return {
            k: (
                MASK if isinstance(k, str) and is_secret_name(k) and v not in (None, "") else redact(v, depth=depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth=depth + 1) for v in value]
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            return redact_url(value)
        return redact_text(value)
    return value


# --- known secret values ------------------------------------------------------------------------------------
# The patterns above find credentials by their shape (`password=...`, `Bearer ...`). A library that logs a
# credential in a shape of its own (oauthlib's "Collected params: [('oauth_token', '...')]") slips past them, so
# the values themselves are kept too: every client built from a connection registers that connection's secrets,
# and the log filter masks them wherever they appear. Bounded: the oldest values drop out first.

SECRET_REGISTRY_SIZE = 256  # values (a connection has up to six secrets, plus the access tokens it fetched)
SECRET_MIN_LENGTH = 8  # shorter values are not registered: they would mask ordinary words

_registered: OrderedDict[str, None] = OrderedDict()
_registered_pattern: re.Pattern[str] | None = None
_registry_lock = threading.Lock()


def _encoded_forms(value: str) -> set[str]:
    """The value as it may appear in a log line: as is, URL-encoded (query strings, form bodies; `+` or `%20`
    for spaces) and URL-encoded twice (an OAuth 1.0a signature base string)."""
    once = quote(value, safe="")
    return {value, once, quote_plus(value, safe=""), quote(value, safe="~"), quote(once, safe="")}


def secrets_register(values: Iterable[str | None]) -> None:
    """Remember secret values so that `scrub_secrets` (and so every log line) masks them. Cheap for values
    already known: a client is built per task."""
    fresh = [v for v in values if isinstance(v, str) and len(v) >= SECRET_MIN_LENGTH and v not in _registered]
    if not fresh:
        return
    global _registered_pattern
    with _registry_lock:
        for value in fresh:
            _registered[value] = None
            _registered.move_to_end(value)
        while len(_registered) > SECRET_REGISTRY_SIZE:
            _registered.popitem(last=False)
        forms = {form for value in _registered for form in _encoded_forms(value)}
        # Longest first, so a value is masked whole rather than one of its encoded forms inside it.
        _registered_pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


def secrets_forget() -> None:
    """Drop every registered value (tests)."""
    global _registered_pattern
    with _registry_lock:
        _registered.clear()
        _registered_pattern = None


def scrub_secrets(text: str) -> str:
    """Mask every registered secret value (and its URL-encoded forms) in text."""
    pattern = _registered_pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def excerpt(text: str | bytes | None, limit: int = 2000) -> str:
    """A redacted, truncated excerpt of an HTTP body for errors and the audit trail."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"
