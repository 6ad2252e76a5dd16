"""Admin login throttling (django-axes): whose address a login comes from, and a limit per address.

- `client_address`: behind `TRUSTED_PROXY_COUNT` reverse proxies that each append to X-Forwarded-For, the client
  is the address that many entries from the right (the one the outermost trusted proxy saw); entries further left
  were written by the client and are not believed. With 0 (the default) it is REMOTE_ADDR. (axes reads proxies
  through django-ipware only when that package is installed; it is not, so axes calls this instead.)
- `LoginThrottleHandler`: axes compares the largest failure count among the lockout parameter combinations with
  one limit. This handler gives the address-only combination its own, higher limit (AXES_ADDRESS_FAILURE_LIMIT),
  so one address trying many usernames is locked out too, while a username is still locked after
  AXES_FAILURE_LIMIT failures from one address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest

ADDRESS_ONLY = ("ip_address", ["ip_address"], ("ip_address",))


def _address(value: str) -> str | None:
    """An IP address from a forwarded entry (`1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`); None when it is not."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The login client's address as the trusted proxies report it (AXES_CLIENT_IP_CALLABLE)."""
    remote = request.META.get("REMOTE_ADDR")
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if count <= 0:
        return remote
    entries = [e for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if e.strip()]
    if len(entries) < count:
        return remote  # did not come through every trusted proxy
    return _address(entries[-count]) or remote


class LoginThrottleHandler(AxesDatabaseHandler):
    """The database handler with a limit of its own for the address-only lockout parameter."""

    def get_failures(self, request: Any, credentials: dict | None = None) -> int:
        # Each combination's count is scaled to the one limit axes compares with: count * limit // own limit
        # reaches `limit` exactly when count reaches the combination's own limit.
        limit = get_failure_limit(request, credentials)
        parameters = get_lockout_parameters(request, credentials)
        worst = 0
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials), strict=True):
            count = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            own = settings.AXES_ADDRESS_FAILURE_LIMIT if parameter in ADDRESS_ONLY else limit
            worst = max(worst, count * limit // max(1, own))
        return worst

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """A successful login forgets that username's failures from that address, not the address's failures
        for other usernames (AXES_RESET_ON_SUCCESS)."""
        parameters = get_lockout_parameters(request, credentials)
        count = 0
        for parameter, attempts in zip(parameters, self.filter_user_attempts(request, credentials), strict=True):
            if parameter not in ADDRESS_ONLY:
                deleted, _ = attempts.delete()
                count += deleted
        return count
