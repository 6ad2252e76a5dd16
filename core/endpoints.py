"""Which hosts the connector may call: the Fusion pod and its identity domain, Adobe's Commerce and IMS hosts, and a
PaaS store's own https base. URLs are built from a validated base and known resource paths only."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from .errors import PermanentError

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
FUSION_HOST = re.compile(rf"^{_LABEL}\.fa\.(?:{_LABEL})\.oraclecloud\.com$")
IDENTITY_HOST = re.compile(r"^idcs-[a-z0-9]+\.identity\.oraclecloud\.com$")
COMMERCE_SAAS_HOST = re.compile(rf"^{_LABEL}\.api\.commerce\.adobe\.com$")
IMS_HOST = re.compile(rf"^ims-{_LABEL}\.adobelogin\.com$")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _split(url: str, what: str):
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(f"{what}: a URL is required.")
    if any(c.isspace() for c in url) or "\\" in url:
        raise ValidationError(f"{what}: the URL must not contain spaces or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{what}: not a valid URL ({exc}).") from exc
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(f"{what}: credentials in the URL are not allowed.")
    if parts.query or parts.fragment:
        raise ValidationError(f"{what}: the URL must not have a query or fragment.")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError(f"{what}: the URL has no host.")
    return parts, host, port


def _is_local(parts, host: str) -> bool:
    return settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS and parts.scheme in ("http", "https") and host in LOCAL_HOSTS


# The last label of a host that resolvers and browsers read as an IPv4 address rather than a name: decimal,
# octal (0177) or hex (0x7f) numbers, so 127.1, 0177.0.0.1, 0x7f.0.0.1, 169.254.43518 and 2130706433 all are.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


def is_ip_literal(host: str) -> bool:
    """An IP address in any notation: IPv6 (IPv4-mapped too), dotted IPv4 and the forms inet_aton also reads
    (short, octal, hex, a single integer). A name whose last label is a number counts, as it does in browsers."""
    name = host.strip("[]").rstrip(".")
    if ":" in name:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return True
    return bool(_NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]))


def is_localhost_name(host: str) -> bool:
    """localhost, localhost. and every name under .localhost (RFC 6761: always this machine)."""
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _require_https(parts, host: str, what: str) -> None:
    if parts.scheme != "https":
        raise ValidationError(f"{what}: only https:// URLs are allowed (got {parts.scheme or 'no scheme'}://).")
    if is_ip_literal(host):
        raise ValidationError(f"{what}: an IP address (in any notation) is not allowed; use the system's DNS name.")
    if is_localhost_name(host):
        raise ValidationError(f"{what}: {host} is this machine; use the system's public DNS name.")


def _check(url: str, what: str, pattern: re.Pattern[str] | None, example: str, *, path_ok: bool) -> str:
    parts, host, port = _split(url, what)
    if _is_local(parts, host):
        return url.rstrip("/")
    _require_https(parts, host, what)
    if port not in (None, 443):
        raise ValidationError(f"{what}: only the default HTTPS port is allowed.")
    if pattern is not None and not pattern.match(host):
        raise ValidationError(f"{what}: {host} is not a valid host; expected {example}.")
    if not path_ok and parts.path not in ("", "/"):
        raise ValidationError(f"{what}: give the host only, without a path (for example {example}).")
    return url.rstrip("/")


def validate_fusion_base_url(url: str) -> str:
    return _check(
        url,
        "Fusion base URL",
        FUSION_HOST,
        "https://<pod>.fa.<dc>.oraclecloud.com or https://<pod>.fa.ocs.oraclecloud.com",
        path_ok=False,
    )


def validate_identity_token_url(url: str) -> str:
    return _check(
        url,
        "Identity domain token URL",
        IDENTITY_HOST,
        "https://idcs-<id>.identity.oraclecloud.com/oauth2/v1/token",
        path_ok=True,
    )


def validate_commerce_saas_base_url(url: str) -> str:
    parts, host, _ = _split(url, "Commerce base URL")
    checked = _check(
        url,
        "Commerce base URL",
        COMMERCE_SAAS_HOST,
        "https://<region>.api.commerce.adobe.com/<tenant>",
        path_ok=True,
    )
    if not _is_local(parts, host) and not re.fullmatch(r"/[A-Za-z0-9_-]+/?", parts.path or ""):
        raise ValidationError(
            "Commerce base URL: a SaaS URL ends with the tenant id, e.g. https://na1.api.commerce.adobe.com/<tenant>."
        )
    return checked


def validate_commerce_paas_base_url(url: str) -> str:
    parts, host, _ = _split(url, "Commerce base URL")
    if _is_local(parts, host):
        return url.rstrip("/")
    _require_https(parts, host, "Commerce base URL")
    if "." not in host:
        raise ValidationError("Commerce base URL: give the store's public DNS name.")
    return url.rstrip("/")


def validate_ims_token_url(url: str) -> str:
    return _check(url, "IMS token URL", IMS_HOST, "https://ims-na1.adobelogin.com/ims/token/v3", path_ok=True)


def checked_url(validate: Callable[[str], str], url: str, *, hint: str) -> str:
    """`validate(url)` for a client built from a connection: a refused URL is a PermanentError carrying `hint`
    (what the pipeline and "Test connection" report), not a form's ValidationError."""
    try:
        return validate(url)
    except ValidationError as exc:
        raise PermanentError(" ".join(exc.messages), hint=LOCAL_HINT if _local_refused(url) else hint)


LOCAL_HINT = (
    "Local endpoints are not allowed: set CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 for the bundled mocks "
    "(never in production)."
)


def _local_refused(url: str) -> bool:
    """A loopback URL refused only because local endpoints are off: fixing the URL is not the answer then."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return not settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS and parts.scheme in ("http", "https") and host in LOCAL_HOSTS
