"""Connect-time address checks (DNS rebinding): a validated host name that resolves to this machine or the internal
network is refused when the connection is made, whatever the URL looked like."""

import ipaddress
import socket
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from commerce.client import CommerceClient
from core.errors import PermanentError, TransientError
from core.http.addresses import ForbiddenAddressError, address_kind
from core.http.answers import status_error
from core.http.transport import Transport, new_session
from tests.factories import make_connection

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """These tests make names resolve to internal addresses: should the check be missing, fail before a packet
    leaves this machine instead of connecting there."""

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            raise AssertionError(f"the test tried to connect to {host}")
        return _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def dns(monkeypatch):
    """A resolver the test fills in: `dns["name"] = ["10.0.0.5", ...]`; other names resolve as usual."""
    table: dict[str, list[str]] = {}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            port = int(port or 0)
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port, 0, 0) if ":" in a else (a, port),
                )
                for a in table[name]
            ]
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


class _Handler(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Handler.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def transport():
    return Transport(
        system="Commerce",
        session=new_session(),
        error_for=partial(status_error, system="Commerce", detail=""),
        timeout=(1.0, 2.0),
        max_tries=1,
    )


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(dns, local_server, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    dns["shop.rebound.example"] = ["127.0.0.1"]
    url = f"http://shop.rebound.example:{local_server.server_address[1]}/rest/V1/orders"
    with pytest.raises(PermanentError) as caught:
        transport().request("GET", url)
    assert isinstance(caught.value, ForbiddenAddressError)
    assert "shop.rebound.example" in caught.value.message and "loopback" in caught.value.message
    assert _Handler.hits == 0  # nothing was sent


def test_the_same_name_is_called_when_local_endpoints_are_allowed(dns, local_server, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    dns["shop.rebound.example"] = ["127.0.0.1"]
    url = f"http://shop.rebound.example:{local_server.server_address[1]}/rest/V1/orders"
    assert transport().request("GET", url).json() == {"ok": True}
    assert _Handler.hits == 1


@pytest.mark.parametrize(
    "addresses, kind",
    [
        (["10.1.2.3"], "private"),
        (["192.168.0.10"], "private"),
        (["172.16.5.4"], "private"),
        (["169.254.169.254"], "link-local"),
        (["fe80::1"], "link-local"),
        (["fd00::5"], "private"),
        (["::ffff:10.0.0.1"], "private"),
        (["0.0.0.0"], "unspecified"),
        (["224.0.0.1"], "multicast"),
        (["100.64.0.1"], "non-public"),
        (["93.184.216.34", "10.0.0.1"], "private"),  # one bad address refuses the host
    ],
)
def test_internal_addresses_are_refused_even_with_local_endpoints_allowed(dns, settings, addresses, kind):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True  # admits loopback only
    dns["shop.rebound.example"] = addresses
    with pytest.raises(ForbiddenAddressError, match=f"a {kind} address"):
        transport().request("GET", "https://shop.rebound.example/rest/V1/orders")


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("198.51.100.7", "private"),  # documentation range: is_private in Python's table
        ("240.0.0.1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.django_db
@pytest.mark.usefixtures("token_cache")
def test_a_commerce_call_to_a_rebound_name_is_a_permanent_error_naming_the_host(dns, settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    client = CommerceClient.for_connection(make_connection(commerce_base_url="https://shop.rebound.example"))
    dns["shop.rebound.example"] = ["169.254.169.254"]
    with pytest.raises(PermanentError, match="shop.rebound.example") as caught:
        client.get("orders/1")
    assert not isinstance(caught.value, TransientError)
    assert "CONNECTOR_ALLOW_LOCAL_ENDPOINTS" in caught.value.hint


@responses.activate
def test_responses_still_answers_through_the_guarded_adapter(settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    responses.get("https://shop.example.com/x", json={"ok": 1})
    assert transport().request("GET", "https://shop.example.com/x").json() == {"ok": 1}
