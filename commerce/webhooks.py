"""The Commerce webhook receiver: POST /webhooks/commerce/<slug>/.

Commerce webhooks are synchronous and never retried (reference/commerce.md §1.4-1.5): answer in milliseconds,
store before answering, refuse anything unsigned. A plain Django view on purpose: the raw body is needed for
the signatures, and every millisecond here is a millisecond of somebody's checkout.

Order of checks: method (405), connection (404, the same answer for unknown and disabled), declared size (413,
before reading a byte), read at most limit+1 bytes (413), JSON (400), the I/O Events challenge, signature (401),
then store and answer 200 {"op":"success"}. Every refusal is a JSON body naming the problem.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from connector.redaction import redact

from .models import DeliveryRejection
from .payloads import is_challenge
from .services import delivery_accept, rejection_count
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
    for name in (*KEPT_HEADERS, *receiver.keyring.header_names):
        value = request.headers.get(name)
        if value is not None:
            kept[name] = value[:500]
    return redact(kept)


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
        payload = json.loads(body)
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
        request_id=request.headers.get(REQUEST_ID_HEADER, ""),
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
