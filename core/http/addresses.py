"""Which addresses the connector may connect to, checked when the connection is made.

Validating a URL (core/endpoints.py) checks its host name; the name can still resolve to this machine or the
internal network, now or after a DNS change between validation and the call (DNS rebinding). So every session of
the transport connects through `GuardedAdapter`: its connections resolve the name once, refuse the whole host when
any address is loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), unspecified,
multicast, reserved or otherwise not public, and then connect to exactly the addresses they checked (no second
lookup that could answer differently). TLS still verifies the certificate against the host name.

With `CONNECTOR_ALLOW_LOCAL_ENDPOINTS` on, loopback is admitted (the bundled mock systems and tests); nothing else.
A connection through the configured proxy (`CONNECTOR_HTTPS_PROXY`) is to the proxy, which resolves the host
itself: only the URL validation applies then."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from core.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenAddressError(PermanentError):
    """A host resolved to an address the connector does not call. Raised while connecting; it passes through
    urllib3 and requests unchanged, so the transport reports it as the PermanentError it is."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host, self.address, self.kind = host, address, kind
        what = f"{host}, a {kind} address" if host == address else f"{host}: it resolves to {address}, a {kind} address"
        super().__init__(
            f"Refusing to connect to {what}; the connector calls public addresses only",
            hint="Check the host name in the URL and its DNS records: it must be the system's public address. "
            "Loopback is admitted only with CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 (the bundled mock systems and tests).",
        )


def address_kind(address: IPAddress) -> str | None:
    """What makes an address one the connector does not call ("loopback", "private", ...); None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"  # shared address space (100.64.0.0/10) and other special-purpose ranges
    return None


def refused_kind(address: IPAddress) -> str | None:
    kind = address_kind(address)
    if kind == "loopback" and settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS:
        return None
    return kind


def vetted_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, once; ForbiddenAddressError when any of them may not be called."""
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        text = str(sockaddr[0])
        address = ipaddress.ip_address(text.split("%", 1)[0])
        kind = refused_kind(address)
        if kind is not None:
            raise ForbiddenAddressError(host, text, kind)
        if text not in addresses:
            addresses.append(text)
    return addresses


class _GuardedConnectionMixin:
    """`_new_conn` of urllib3's HTTPConnection, with the resolved addresses checked before connecting."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    proxy: Any

    def _new_conn(self) -> socket.socket:
        if self.proxy is not None:  # a connection to the configured proxy, which resolves the host itself
            return super()._new_conn()  # type: ignore[misc]
        host = getattr(self, "_dns_host", self.host).strip("[]")  # as urllib3 resolves it (a trailing dot kept)
        try:
            addresses = vetted_addresses(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        last: OSError | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                last = exc
        if isinstance(last, TimeoutError):
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from last
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}") from last  # type: ignore[arg-type]


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose direct connections go through the address check (proxied ones go to the proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }
