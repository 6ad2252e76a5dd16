"""The Commerce webhook receiver: POST /webhooks/commerce/<slug>/.

Commerce webhooks are synchronous (the checkout waits) and never retried by Commerce: answer in milliseconds,
store before answering, refuse anything unsigned. The door proves who sent the bytes and keeps them; a worker
reads them (commerce.deliveries.delivery_record), so nothing in an odd document can cost Commerce an answer.

Order of checks: method (405), connection (404, the same answer for unknown and disabled), declared size (413,
before reading a byte), read at most limit+1 bytes (413), signature over the raw bytes (401; for I/O Events also
the recipient), then one INSERT of the delivery and 200 {"op":"success"}. The body is not parsed, except a small
unsigned one on a connection with an I/O Events key, to see whether it is exactly a registration step. Every
refusal is a JSON body naming the problem (never a header name or key detail: those go to the counters).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.views.decorators.csrf import csrf_exempt

from core.metrics import WEBHOOK_DELIVERIES
from core.redaction import MASK, is_secret_name, redact

from .deliveries import delivery_store
from .models import DeliveryRejection
from .rejections import rejection_count
from .verifiers import IO_SIGNATURE_HEADERS, Receiver, receiver_get, receiver_refresh_after_failure

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-adobe-commerce-request-id"
# Only these headers are kept on the delivery (redacted: signature values are masked).
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    REQUEST_ID_HEADER,
    "x-adobe-commerce-webhook-signature",
    *IO_SIGNATURE_HEADERS,
    "x-adobe-public-key1-path",
    "x-adobe-public-key2-path",
    "x-adobe-event-id",
    "x-adobe-event-code",
    "x-adobe-retry-count",
    "x-adobe-provider",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
)
SUCCESS = b'{"op":"success"}'
NOT_FOUND = {"error": "not_found", "message": "No enabled connection has this webhook address."}
# The I/O Events registration steps, the one unsigned thing answered: GET ?challenge=<token> is echoed; a POST
# of exactly {"validationUrl": "https://csm.adobe.io/..."} (Adobe's fallback when the GET was not answered) is
# acknowledged and logged for a person to open it. Both only on a connection with an I/O Events key.
CHALLENGE = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
REGISTRATION_MAX_BYTES = 1024
VALIDATION_HOST = "csm.adobe.io"
BAD_SIGNATURE = "The signature is missing or does not verify with this connection's keys."
WRONG_RECIPIENT = "The event is not addressed to this connection's I/O Events registration."


def _refused(connection: str, reason: str) -> None:
    """Count a refusal for Prometheus (in memory, no database): `connection` is a known connection's slug, else
    empty (an unknown slug is whatever the sender wrote, not a label)."""
    WEBHOOK_DELIVERIES.labels(connection, "refused", reason).inc()


def _refuse(status: int, error: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": error, "message": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _kept_headers(request: HttpRequest, receiver: Receiver) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, meta_key, secret in _kept_header_plan(tuple(receiver.keyring.header_names)):
        value = request.META.get(meta_key)
        if value is not None:
            kept[name] = MASK if secret and value else redact(value[:500])
    return kept


@functools.lru_cache(maxsize=256)
def _kept_header_plan(signature_headers: tuple[str, ...]) -> tuple[tuple[str, str, bool], ...]:
    """(header, its WSGI environ key, masked?) for every kept header: a connection's own signature headers
    are always masked, like any header whose name says secret."""
    plan = []
    for name in dict.fromkeys((*KEPT_HEADERS, *signature_headers)):
        meta_key = name.upper().replace("-", "_")
        if meta_key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            meta_key = f"HTTP_{meta_key}"
        plan.append((name, meta_key, name in signature_headers or is_secret_name(name)))
    return tuple(plan)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is over the limit. Never reads more than limit+1 bytes."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared:
        return request.read(limit + 1)[: limit + 1]
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django sees no length for a chunked body; the WSGI server (gunicorn) de-chunks wsgi.input.
        stream = request.META["wsgi.input"]
        chunks, size = [], 0
        while size <= limit:
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    return b""


def _query(request: HttpRequest, name: str) -> str:
    """One query parameter, without building request.GET for the usual empty query string."""
    query = request.META.get("QUERY_STRING", "")
    if not query:
        return ""
    values = parse_qs(query, max_num_fields=20).get(name)
    return values[0] if values else ""


def _registration_step(body: bytes) -> dict[str, str] | None:
    """A small unsigned body that is exactly an I/O Events registration step, else None. orjson only: it
    refuses deep nesting with an error instead of recursing."""
    if len(body) > REGISTRATION_MAX_BYTES:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or list(value) != ["validationUrl"] or not isinstance(value["validationUrl"], str):
        return None
    url = urlsplit(value["validationUrl"])
    if url.scheme != "https" or url.hostname != VALIDATION_HOST or url.port is not None:
        return None
    return {"validationUrl": value["validationUrl"]}


_logged_at: dict[int, float] = {}
_logged_lock = threading.Lock()


def _registration_logged(connection_id: int, url: str) -> None:
    """Log the validation URL a person must open (within 5 minutes), at most once a minute per connection."""
    now = time.monotonic()
    with _logged_lock:
        if now - _logged_at.get(connection_id, -60.0) < 60.0:
            return
        _logged_at[connection_id] = now
    logger.warning(
        "Adobe I/O Events asks to validate a webhook registration: open %s within 5 minutes",
        url[:500],
        extra={"connection_id": connection_id},
    )


NO_VERIFIER = "This connection has no active verification key, so every delivery is refused."


def _signature_refused(
    request: HttpRequest, receiver: Receiver, body: bytes, reason: str, refusal: str
) -> HttpResponse:
    """401, counted (with the verifier's reason, which may name a header: only the counter sees it); or the one
    unsigned thing answered, an I/O Events registration step."""
    connection = receiver.connection
    if "io_events" in receiver.keyring.schemes and (step := _registration_step(body)) is not None:
        _registration_logged(connection.pk, step["validationUrl"])
        WEBHOOK_DELIVERIES.labels(connection.slug, "registration", "").inc()
        return HttpResponse(SUCCESS, content_type="application/json")
    if not receiver.keyring:
        code, message = DeliveryRejection.Reason.NO_VERIFIER, NO_VERIFIER
    elif refusal == DeliveryRejection.Reason.WRONG_RECIPIENT:
        code, message = DeliveryRejection.Reason.WRONG_RECIPIENT, WRONG_RECIPIENT
    else:
        code, message = DeliveryRejection.Reason.BAD_SIGNATURE, BAD_SIGNATURE
    rejection_count(connection_id=connection.pk, reason=code, source_ip=_client_ip(request), detail=reason)
    _refused(connection.slug, code)
    return _refuse(401, str(code), message)


def _challenge_answer(request: HttpRequest, receiver: Receiver) -> HttpResponse:
    """Adobe I/O Events registration: GET ?challenge=<token> is echoed, on a connection with an I/O Events key."""
    challenge = _query(request, "challenge")
    if challenge and "io_events" in receiver.keyring.schemes and CHALLENGE.fullmatch(challenge):
        return JsonResponse({"challenge": challenge})
    return _refuse(
        405,
        "method_not_allowed",
        "Webhooks are POST; GET only answers an I/O Events challenge on a connection with an I/O Events key.",
        Allow="POST",
    )


def _too_large(request: HttpRequest, receiver: Receiver, limit: int, detail: str) -> HttpResponse:
    rejection_count(
        connection_id=receiver.connection.pk,
        reason=DeliveryRejection.Reason.TOO_LARGE,
        source_ip=_client_ip(request),
        detail=detail,
    )
    _refused(receiver.connection.slug, DeliveryRejection.Reason.TOO_LARGE)
    return _refuse(413, "too_large", f"The body is over the {limit}-byte limit.")


@csrf_exempt
def commerce_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    method = request.method or ""
    if method not in ("POST", "GET"):
        _refused("", "method_not_allowed")
        return _refuse(
            405, "method_not_allowed", f"{method} is not allowed here; Commerce webhooks are POST.", Allow="POST, GET"
        )
    limit = int(settings.CONNECTOR_WEBHOOK_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        _refused("", "malformed")
        return _refuse(400, "bad_request", "Content-Length is not a number.")
    receiver = receiver_get(slug)
    if receiver is None:
        rejection_count(
            connection_id=None,
            reason=DeliveryRejection.Reason.UNKNOWN_CONNECTION,
            source_ip=_client_ip(request),
            detail=slug[:64],
        )
        _refused("", DeliveryRejection.Reason.UNKNOWN_CONNECTION)
        return JsonResponse(NOT_FOUND, status=404)
    if method == "GET":
        return _challenge_answer(request, receiver)
    if declared > limit:
        return _too_large(request, receiver, limit, f"declared {declared} bytes")
    body = _read_body(request, limit)
    if body is None or len(body) > limit:
        return _too_large(request, receiver, limit, "chunked body over the limit")

    verification = receiver.keyring.verify(body, request.META)
    if not verification.ok and receiver.keyring:
        fresher = receiver_refresh_after_failure(slug, receiver)
        if fresher is not None:
            receiver = fresher
            verification = receiver.keyring.verify(body, request.META)
    if not verification.ok:
        return _signature_refused(request, receiver, body, verification.reason, verification.refusal)

    delivery_id = delivery_store(
        connection_id=receiver.connection.pk,
        body=body,
        verifier=verification.summary,
        headers=_kept_headers(request, receiver),
        request_id=request.META.get("HTTP_X_ADOBE_COMMERCE_REQUEST_ID", ""),
        source_ip=_client_ip(request),
        event_hint=_query(request, "event"),
    )
    logger.debug("delivery %s stored", delivery_id, extra={"connection_id": receiver.connection.pk})
    WEBHOOK_DELIVERIES.labels(receiver.connection.slug, "accepted", "").inc()
    return HttpResponse(SUCCESS, content_type="application/json")


class WebhookFastPath:
    """WSGI: POST /webhooks/commerce/<slug>/ straight to `commerce_webhook`, everything else to Django.

    Django's middleware stack (sessions, authentication, messages, CSRF, axes, static files) does nothing for a
    signed webhook but cost about a fifth of a delivery's CPU (bench/README.md). What of it does matter here is
    kept: the request lifecycle signals (database connections are checked and recycled as for any request), the
    Host check against ALLOWED_HOSTS, the HTTPS redirect (handed to Django), the security response headers, and
    an unexpected error is logged and answered 500, never swallowed. The URL route stays for everything else
    (the test client, reverse())."""

    PATH = re.compile(r"/webhooks/commerce/(?P<slug>[-a-zA-Z0-9_]+)/")

    def __init__(self, django_application: Callable[..., Any]) -> None:
        self.django_application = django_application
        # Read at start-up, as Django's own middleware reads its settings.
        self._security = SecurityMiddleware(_never_called)
        self._frame_options = XFrameOptionsMiddleware(_never_called)
        self._redirect_http = settings.SECURE_SSL_REDIRECT

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = self.PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or (self._redirect_http and not _is_secure(environ)):
            return self.django_application(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
            response = commerce_webhook(request, match["slug"])
        except DisallowedHost as exc:
            logger.warning("Webhook refused: %s", exc)
            _refused("", "bad_host")
            response = _refuse(400, "bad_host", "The Host header is not one this connector serves.")
        except Exception:
            signals.got_request_exception.send(sender=self.__class__, request=request)
            logger.exception("Webhook delivery to %s failed", match["slug"])
            _refused("", "error")
            response = _refuse(
                500, "internal_error", "The delivery could not be handled; it was not acknowledged as received."
            )
        response = self._frame_options.process_response(request, self._security.process_response(request, response))
        response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware: no chunked answer
        # response.close() ends the request (request_finished)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response


def _never_called(request: HttpRequest) -> HttpResponse:
    """The middleware's get_response: only their process_response is used here."""
    raise AssertionError("not a middleware chain")


def _is_secure(environ: dict[str, Any]) -> bool:
    header, secure_value = settings.SECURE_PROXY_SSL_HEADER or (None, None)
    if header and header in environ:
        return environ[header].split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"
