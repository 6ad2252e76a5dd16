"""The Commerce webhook receiver: POST /webhooks/commerce/<slug>/.

Commerce webhooks are synchronous (the checkout waits) and never retried by Commerce: answer in milliseconds,
store before answering, refuse anything unsigned. A plain Django view on purpose: the raw body is needed for
the signatures, and every millisecond here is a millisecond of somebody's checkout.

Order of checks: method (405), connection (404, the same answer for unknown and disabled), declared size (413,
before reading a byte), read at most limit+1 bytes (413), JSON (400), the I/O Events challenge, signature (401),
then store and answer 200 {"op":"success"}. Every refusal is a JSON body naming the problem.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.views.decorators.csrf import csrf_exempt

from core.redaction import MASK, is_secret_name, redact

from .deliveries import delivery_accept, rejection_count
from .models import DeliveryRejection
from .payloads import is_challenge
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


def _parse_json(body: bytes) -> Any:
    """orjson parses a delivery several times faster than json; what it refuses but the standard library reads
    (a UTF-8 byte order mark, UTF-16) still gets the standard library's reading, not a 400."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _challenge(value: str) -> JsonResponse:
    return JsonResponse({"challenge": value[:1000]})


@csrf_exempt
def commerce_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    method = request.method or ""
    if method not in ("POST", "GET"):
        return _refuse(
            405, "method_not_allowed", f"{method} is not allowed here; Commerce webhooks are POST.", Allow="POST, GET"
        )
    limit = int(settings.CONNECTOR_WEBHOOK_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refuse(400, "bad_request", "Content-Length is not a number.")
    receiver = receiver_get(slug)
    if receiver is None:
        rejection_count(
            connection=None,
            reason=DeliveryRejection.Reason.UNKNOWN_CONNECTION,
            source_ip=_client_ip(request),
            detail=slug[:64],
        )
        return JsonResponse(NOT_FOUND, status=404)
    connection = receiver.connection

    if method == "GET":
        # Adobe I/O Events registration: GET ?challenge=... must be echoed.
        challenge = request.GET.get("challenge")
        if challenge and "io_events" in receiver.keyring.schemes:
            return _challenge(challenge)
        return _refuse(
            405,
            "method_not_allowed",
            "Webhooks are POST; GET only answers an I/O Events challenge on a connection with an I/O Events key.",
            Allow="POST",
        )

    if declared > limit:
        rejection_count(
            connection=connection,
            reason=DeliveryRejection.Reason.TOO_LARGE,
            source_ip=_client_ip(request),
            detail=f"declared {declared} bytes",
        )
        return _refuse(413, "too_large", f"The body is over the {limit}-byte limit.")
    body = _read_body(request, limit)
    if body is None or len(body) > limit:
        rejection_count(
            connection=connection,
            reason=DeliveryRejection.Reason.TOO_LARGE,
            source_ip=_client_ip(request),
            detail="chunked body over the limit",
        )
        return _refuse(413, "too_large", f"The body is over the {limit}-byte limit.")
    try:
        payload = _parse_json(body)
    except (ValueError, UnicodeDecodeError):
        rejection_count(connection=connection, reason=DeliveryRejection.Reason.NOT_JSON, source_ip=_client_ip(request))
        return _refuse(400, "not_json", "The body is not JSON.")

    if is_challenge(payload) and "io_events" in receiver.keyring.schemes:
        return _challenge(payload["challenge"])

    verification = receiver.keyring.verify(body, request.META)
    if not verification.ok and receiver.keyring:
        fresher = receiver_refresh_after_failure(slug, receiver)
        if fresher is not None:
            receiver = fresher
            verification = receiver.keyring.verify(body, request.META)
    if not verification.ok:
        no_key = not receiver.keyring
        rejection_count(
            connection=connection,
            reason=DeliveryRejection.Reason.NO_VERIFIER if no_key else DeliveryRejection.Reason.BAD_SIGNATURE,
            source_ip=_client_ip(request),
            detail=verification.reason,
        )
        message = (
            "This connection has no active verification key, so every delivery is refused."
            if no_key
            else f"The signature does not verify: {verification.reason}."
        )
        return _refuse(401, "no_verifier" if no_key else "bad_signature", message)

    outcome = delivery_accept(
        connection=connection,
        body=body,
        payload=payload,
        verification=verification,
        headers=_kept_headers(request, receiver),
        request_id=request.META.get("HTTP_X_ADOBE_COMMERCE_REQUEST_ID", ""),
        source_ip=_client_ip(request),
        event_hint=request.GET.get("event", ""),
    )
    logger.debug(
        "delivery %s %s",
        outcome.delivery_id,
        outcome.status,
        extra={"connection_id": connection.pk, "record_id": outcome.record_id},
    )
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
        self._security = SecurityMiddleware(lambda request: None)
        self._frame_options = XFrameOptionsMiddleware(lambda request: None)
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
            response = _refuse(400, "bad_host", "The Host header is not one this connector serves.")
        except Exception:
            signals.got_request_exception.send(sender=self.__class__, request=request)
            logger.exception("Webhook delivery to %s failed", match["slug"])
            response = _refuse(
                500, "internal_error", "The delivery could not be handled; it was not acknowledged as received."
            )
        response = self._frame_options.process_response(request, self._security.process_response(request, response))
        response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware: no chunked answer
        response._resource_closers.append(request.close)  # response.close() ends the request (request_finished)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response


def _is_secure(environ: dict[str, Any]) -> bool:
    header, secure_value = settings.SECURE_PROXY_SSL_HEADER or (None, None)
    if header and header in environ:
        return environ[header].split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"
