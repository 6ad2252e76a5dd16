"""GET /healthz: is the database reachable, is the broker reachable. No login, no secrets, fast."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


def database_status() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("Health check: database unreachable (%s)", type(exc).__name__)
        return "down"
    return "ok"


def broker_status() -> str:
    url = settings.CELERY_BROKER_URL
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    if url.startswith("filesystem://"):
        return _filesystem_broker_status(options)
    from kombu import Connection as BrokerConnection

    timeout = min(float(getattr(settings, "CELERY_BROKER_CONNECTION_TIMEOUT", BROKER_TIMEOUT_SECONDS) or 2), 5.0)
    try:
        with BrokerConnection(url, connect_timeout=timeout, transport_options=options) as broker:
            broker.ensure_connection(max_retries=0, timeout=timeout)
    except Exception as exc:
        logger.warning("Health check: broker unreachable (%s)", type(exc).__name__)
        return "down"
    return "ok"


def _filesystem_broker_status(options: dict) -> str:
    """The embedded broker is a folder: it works when the folders exist and can be written."""
    folders = {options.get("data_folder_in", "data_in"), options.get("data_folder_out", "data_out")}
    for folder in folders:
        path = Path(folder)
        if not (path.is_dir() and os.access(path, os.W_OK | os.X_OK)):
            logger.warning("Health check: broker folder %s is missing or not writable", path)
            return "down"
    return "ok"


@never_cache
@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    status = {"database": database_status(), "broker": broker_status()}
    healthy = all(value == "ok" for value in status.values())
    return JsonResponse(status, status=200 if healthy else 503)
