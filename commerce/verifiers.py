"""Webhook signature verification, per connection and pluggable.

Three schemes, each with any number of active keys so keys can rotate without downtime:
* HMAC-SHA256 of the raw body, in a configurable header, hex or base64, with an optional prefix;
* Adobe Commerce native: `x-adobe-commerce-webhook-signature` = base64(RSA-PKCS1v15-SHA256 over
  base64(raw body)) (Commerce signs Base64Json::serialize(payload) with openssl_sign, SHA-256);
* Adobe I/O Events: `x-adobe-digital-signature-1`/`-2`, base64 RSA-SHA256 over the raw body; either verifies.
  Adobe signs every customer's events with the same key pairs, so a verified signature only proves Adobe sent
  the event: it must also be addressed to the key's recipient client id (`recipientclientid`, formerly
  `recipient_client_id`) and, when the key names one, come from its provider (`source` `urn:uuid:<id>`).

Keys are parsed once per connection and cached in-process for a few seconds, so a request never parses a PEM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings

from connector.models import Connection, WebhookKey

ADOBE_SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
IO_SIGNATURE_HEADERS = ("x-adobe-digital-signature-1", "x-adobe-digital-signature-2")


# Why a delivery was refused, as DeliveryRejection counts it.
BAD_SIGNATURE, WRONG_RECIPIENT = "bad_signature", "wrong_recipient"


@dataclass(frozen=True)
class Verification:
    ok: bool
    scheme: str = ""
    key_label: str = ""
    reason: str = ""  # for the rejection counter and the logs; never sent back to the caller
    refusal: str = BAD_SIGNATURE  # when not ok: bad_signature, or wrong_recipient (signed by Adobe, not for us)

    @property
    def summary(self) -> str:
        return f"{self.scheme}:{self.key_label}" if self.ok else self.reason


def _meta_name(header: str) -> str:
    """The WSGI environ name of an HTTP header (Django's request.META)."""
    return "HTTP_" + header.strip().upper().replace("-", "_")


def _b64decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


class HmacVerifier:
    scheme = WebhookKey.Scheme.HMAC

    def __init__(self, *, label: str, secret: str, header: str, encoding: str, prefix: str) -> None:
        self.label = label
        self._secret = secret.encode()
        self.header = header
        self.meta_name = _meta_name(header)
        self.encoding = encoding
        self.prefix = prefix

    def __repr__(self) -> str:  # never the secret
        return f"<HmacVerifier {self.label!r} header={self.header!r} {self.encoding}>"

    def check(self, body: bytes, meta: Mapping[str, str]) -> str:
        """'' when verified, else the reason it is not."""
        value = meta.get(self.meta_name)
        if not value:
            return f"missing {self.header} header"
        value = value.strip()
        if self.prefix:
            if not value.startswith(self.prefix):
                return f"{self.header} lacks the {self.prefix!r} prefix"
            value = value[len(self.prefix) :]
        digest = hmac.new(self._secret, body, hashlib.sha256).digest()
        if self.encoding == WebhookKey.Encoding.BASE64:
            given = _b64decode(value)
            if given is None:
                return f"{self.header} is not base64"
            return "" if hmac.compare_digest(given, digest) else "HMAC does not match"
        return "" if hmac.compare_digest(value.lower().encode(), digest.hex().encode()) else "HMAC does not match"


class _RsaVerifier:
    def __init__(self, *, label: str, key: RSAPublicKey) -> None:
        self.label = label
        self.key = key

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}>"

    def _verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


class AdobeRsaVerifier(_RsaVerifier):
    scheme = WebhookKey.Scheme.ADOBE_RSA

    def check(self, body: bytes, meta: Mapping[str, str], *, signed: bytes | None = None) -> str:
        value = meta.get(_meta_name(ADOBE_SIGNATURE_HEADER))
        if not value:
            return f"missing {ADOBE_SIGNATURE_HEADER} header"
        signature = _b64decode(value)
        if signature is None:
            return f"{ADOBE_SIGNATURE_HEADER} is not base64"
        message = signed if signed is not None else base64.b64encode(body)
        return "" if self._verify(signature, message) else "RSA signature does not verify"


NOT_FOR_US = "the I/O event is addressed to another recipient"


class IoEventsVerifier(_RsaVerifier):
    scheme = WebhookKey.Scheme.IO_EVENTS

    def __init__(self, *, label: str, key: RSAPublicKey, recipient_client_id: str, provider_id: str = "") -> None:
        super().__init__(label=label, key=key)
        self.recipient_client_id = recipient_client_id
        self.source = f"urn:uuid:{provider_id}" if provider_id else ""

    def check(self, body: bytes, meta: Mapping[str, str], event: Callable[[], dict[str, Any] | None]) -> str:
        values = [meta.get(_meta_name(h)) for h in IO_SIGNATURE_HEADERS]
        if not any(values):
            return "missing x-adobe-digital-signature-1/-2 headers"
        for value in values:
            signature = _b64decode(value) if value else None
            if signature is not None and self._verify(signature, body):
                return self.addressee_problem(event())
        return "I/O Events signature does not verify"

    def addressee_problem(self, event: dict[str, Any] | None) -> str:
        """'' when the event is addressed to this key's registration (and provider), else NOT_FOR_US...: the
        new field name first (the deprecated `recipient_client_id` goes away by the end of 2026)."""
        if event is None:
            return f"{NOT_FOR_US} (the body is not a JSON object)"
        recipient = event.get("recipientclientid")
        if recipient is None:
            recipient = event.get("recipient_client_id")
        if not isinstance(recipient, str) or not hmac.compare_digest(
            recipient.encode(), self.recipient_client_id.encode()
        ):
            return f"{NOT_FOR_US} (recipientclientid {str(recipient)[:64]!r})"
        if self.source and event.get("source") != self.source:
            return f"{NOT_FOR_US} (source {str(event.get('source'))[:80]!r} is not the key's provider)"
        return ""


Verifier = HmacVerifier | AdobeRsaVerifier | IoEventsVerifier


class KeyRing:
    """The active verifiers of one connection. A delivery is verified when any one key verifies it."""

    def __init__(self, verifiers: list[Verifier], *, broken: list[str] | None = None) -> None:
        self.verifiers = verifiers
        self.broken = broken or []  # labels of keys that could not be loaded (bad PEM)
        self.schemes = {v.scheme for v in verifiers}
        self.header_names = sorted({v.header.lower() for v in verifiers if isinstance(v, HmacVerifier)})

    def __bool__(self) -> bool:
        return bool(self.verifiers)

    def verify(self, body: bytes, meta: Mapping[str, str]) -> Verification:
        if not self.verifiers:
            return Verification(False, reason="the connection has no active verification key")
        reasons: list[str] = []
        adobe_message: bytes | None = None
        event = _EventOnce(body)
        for verifier in self.verifiers:
            if isinstance(verifier, AdobeRsaVerifier):
                adobe_message = adobe_message or base64.b64encode(body)
                reason = verifier.check(body, meta, signed=adobe_message)
            elif isinstance(verifier, IoEventsVerifier):
                reason = verifier.check(body, meta, event)
            else:
                reason = verifier.check(body, meta)
            if not reason:
                return Verification(True, scheme=str(verifier.scheme), key_label=verifier.label)
            if reason not in reasons:
                reasons.append(reason)
        refusal = WRONG_RECIPIENT if any(r.startswith(NOT_FOR_US) for r in reasons) else BAD_SIGNATURE
        return Verification(False, reason="; ".join(reasons)[:200], refusal=refusal)


class _EventOnce:
    """The body as a JSON object, parsed at most once and only for an I/O Events key whose signature verified
    (the recipient check): orjson, which refuses deep nesting with an error instead of recursing; anything it
    cannot read is None (then the event is not shown to be ours, and is refused)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.parsed = False
        self.value: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any] | None:
        if not self.parsed:
            self.parsed = True
            try:
                value = orjson.loads(self.body)
            except Exception:  # an unreadable body is simply not an event addressed to us
                value = None
            self.value = value if isinstance(value, dict) else None
        return self.value


def build_verifier(key: WebhookKey) -> Verifier:
    label = key.label or f"key {key.pk}"
    if key.scheme == WebhookKey.Scheme.HMAC:
        if not key.secret:
            raise ValueError("HMAC key without a secret")
        return HmacVerifier(
            label=label,
            secret=key.secret,
            header=key.header_name or "X-Commerce-Signature",
            encoding=key.encoding,
            prefix=key.prefix,
        )
    public = load_pem_public_key(key.public_key.strip().encode())
    if not isinstance(public, RSAPublicKey):
        raise ValueError("not an RSA public key")
    if key.scheme == WebhookKey.Scheme.ADOBE_RSA:
        return AdobeRsaVerifier(label=label, key=public)
    if key.scheme == WebhookKey.Scheme.IO_EVENTS:
        if not key.recipient_client_id.strip():
            raise ValueError("I/O Events key without the recipient client id of its registration")
        return IoEventsVerifier(
            label=label,
            key=public,
            recipient_client_id=key.recipient_client_id.strip(),
            provider_id=key.provider_id.strip(),
        )
    raise ValueError(f"unknown scheme {key.scheme!r}")


def keyring_load(connection_id: int) -> KeyRing:
    verifiers: list[Verifier] = []
    broken: list[str] = []
    for key in WebhookKey.objects.filter(connection_id=connection_id, active=True).order_by("-created_at", "-pk"):
        try:
            verifiers.append(build_verifier(key))
        except (ValueError, TypeError):
            broken.append(key.label or f"key {key.pk}")
    return KeyRing(verifiers, broken=broken)


@dataclass(frozen=True)
class Receiver:
    """What the webhook view needs about a connection: loaded once, cached for a few seconds."""

    connection: Connection
    keyring: KeyRing
    loaded_at: float


_cache: dict[str, tuple[float, Receiver | None]] = {}
_cache_lock = threading.Lock()


def receiver_get(slug: str, *, fresh: bool = False) -> Receiver | None:
    """The enabled connection with this slug and its parsed keys, or None. Cached in-process for
    CONNECTOR_WEBHOOK_CACHE_SECONDS (a disabled connection or a changed key takes effect within that time;
    a failed verification reloads early, see receiver_refresh_after_failure)."""
    ttl = float(settings.CONNECTOR_WEBHOOK_CACHE_SECONDS)
    now = time.monotonic()
    if not fresh and ttl > 0:
        hit = _cache.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
    connection = Connection.objects.filter(slug=slug, enabled=True).first()
    receiver = Receiver(connection, keyring_load(connection.pk), now) if connection is not None else None
    if ttl > 0:
        with _cache_lock:
            if len(_cache) > 1000:  # unknown slugs must not grow the cache without bound
                _cache.clear()
            _cache[slug] = (now + ttl, receiver)
    return receiver


def receiver_refresh_after_failure(slug: str, receiver: Receiver, *, min_age: float = 1.0) -> Receiver | None:
    """After a failed verification, reload the keys once if the cached copy is older than `min_age` seconds:
    a key rotated a moment ago works at once, and a flood of bad signatures costs at most one reload a second."""
    if time.monotonic() - receiver.loaded_at < min_age:
        return None
    return receiver_get(slug, fresh=True)


def receiver_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
