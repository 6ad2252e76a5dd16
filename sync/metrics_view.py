"""GET /metrics: the Prometheus scrape (README "Metrics"). Off unless a bearer token
(CONNECTOR_METRICS_TOKEN) or an address list (CONNECTOR_METRICS_ALLOWED_ADDRESSES) is configured: with neither
the address answers 404, as if there were none. With both, a scrape must pass both."""

from __future__ import annotations

import functools
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from .metrics import metrics_exposition


@functools.lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)


def address_allowed(address: str | None, allowed: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(allowed))


def bearer_matches(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token = settings.CONNECTOR_METRICS_TOKEN
    allowed = tuple(settings.CONNECTOR_METRICS_ALLOWED_ADDRESSES)
    if not token and not allowed:
        return JsonResponse({"error": "not_found", "message": "Not found."}, status=404)
    if allowed and not address_allowed(request.META.get("REMOTE_ADDR"), allowed):
        return JsonResponse(
            {"error": "forbidden", "message": "This address may not read the metrics."},
            status=403,
        )
    if token and not bearer_matches(request.META.get("HTTP_AUTHORIZATION", ""), token):
        response = JsonResponse(
            {"error": "unauthorized", "message": "A valid bearer token is required to read the metrics."},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
