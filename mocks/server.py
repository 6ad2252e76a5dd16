"""The machinery every mock system shares, like stripe-mock: a threaded HTTP server, routing, fault injection,
the `/__mock__/` control surface (faults, state, reset, a clock tests can move) and token bookkeeping. For tests
and demos only, never for production.

A mock system subclasses `MockServer` (see mocks.fusion and mocks.commerce); nothing here knows either system,
and nothing here needs Django. The `mock_*` management commands are built with mocks.cli.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import dataclasses
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__mock__/"


class MockError(Exception):
    """Raised by a handler to answer with the system's error shape."""

    def __init__(self, status: int, message: str, *, code: str = "", parameters: Any = None, headers=None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.parameters = parameters
        self.headers = dict(headers or {})


@dataclass
class Faults:
    """What can go wrong, settable at start (CLI flags, constructor) and at run time (POST /__mock__/faults)."""

    latency_ms: int = 0  # added to every request
    error_rate: float = 0.0  # share of requests answered with a random 500 or 503
    rate_limit: float = 0.0  # share of requests answered 429 with Retry-After
    retry_after: int = 1  # seconds, in the Retry-After of 429 and 503 answers
    outage: float = 0.0  # every request answers 503 for this many seconds from when it is set
    drop_after_commit_rate: float = 0.0  # share of creates committed, then the socket closed without an answer
    token_lifetime: int = 3600  # seconds; `expires_in` of new tokens
    forbid: bool = False  # authenticated API calls answer 403, as for a user without the role
    fail_next: list[int] = field(default_factory=list)  # statuses for the next API calls, in order (e.g. [503, 429])

    RATES: ClassVar[tuple[str, ...]] = ("error_rate", "rate_limit", "drop_after_commit_rate")
    # The help of each fault's command-line flag; a system's own faults extend it.
    HELP: ClassVar[dict[str, str]] = {
        "latency_ms": "milliseconds added to every request",
        "error_rate": "share (0-1) of requests answered with a random 500 or 503",
        "rate_limit": "share (0-1) of requests answered 429 with Retry-After",
        "retry_after": "seconds in the Retry-After of 429 and 503 answers",
        "outage": "answer every request 503 for this many seconds from start",
        "drop_after_commit_rate": "share (0-1) of creates committed, then the connection closed without an answer",
        "token_lifetime": "seconds a new access token lives (expires_in)",
        "forbid": "answer authenticated API calls 403, as for a user without the role",
    }

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, checking names and types; raises ValueError naming the bad field."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            try:
                if isinstance(current, bool):
                    if not isinstance(value, bool):
                        raise TypeError
                    new: Any = value
                elif isinstance(current, list):
                    new = [int(v) for v in value]
                    if any(not 100 <= v <= 599 for v in new):
                        raise ValueError
                elif isinstance(current, int):
                    new = int(value)
                    if new < 0:
                        raise ValueError
                else:
                    new = float(value)
                    if new < 0 or (name in self.RATES and new > 1):
                        raise ValueError
            except (TypeError, ValueError):
                raise ValueError(f"bad value for {name}: {value!r}") from None
            setattr(self, name, new)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MockRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: Message
    body: bytes
    url: str  # absolute, as the client addressed it (scheme://Host/path?query): what OAuth 1.0a signs
    path_args: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""

    def json(self) -> Any:
        if not self.body:
            raise MockError(400, "The request has no body.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise MockError(400, "The request body is not valid JSON.") from None

    def form(self) -> dict[str, str]:
        try:
            pairs = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise MockError(400, "The form body is not UTF-8.") from None
        return {k: v[-1] for k, v in pairs.items()}

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass
class MockResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the socket without answering


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> MockResponse:
    return MockResponse(
        status,
        json.dumps(data, default=str).encode("utf-8"),
        {"Content-Type": "application/json", **(headers or {})},
    )


DROP = MockResponse(0, drop=True)

Handler = Callable[[MockRequest], MockResponse]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, mock: MockServer) -> None:
        self.mock = mock
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "MockSystem/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        address = self.server.server_address
        host = self.headers.get("Host") or f"{address[0]!s}:{address[1]}"
        request = MockRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            raw_query=parts.query,
            headers=self.headers,
            body=body,
            url=f"http://{host}{self.path}",
        )
        response = self.server.mock.dispatch(request)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class MockServer:
    """Base class of a mock system: routing, faults, counters, control surface, start/stop.

    Subclasses set `system`, implement `_seed_data()`, `_routes()`, `render_error()` and may extend
    `_control_routes()` and `state()`."""

    system = "mock"
    faults_class: type[Faults] = Faults

    def __init__(self, *, seed: int | None = None, **faults: Any) -> None:
        self._lock = threading.RLock()
        self._seed = seed
        self._initial_faults = self.faults_class()
        self._initial_faults.update(faults)
        self._clock_offset = 0.0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._compiled = [(m, re.compile(p + r"\Z"), h) for m, p, h in self._routes()]
        self._compiled_control = [(m, re.compile(p + r"\Z"), h) for m, p, h in self._control_routes()]
        self.reset()

    # -- state ------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded data, the faults given at start and zero counters."""
        with self._lock:
            self.faults = copy.deepcopy(self._initial_faults)
            self.random = random.Random(self._seed)
            self.outage_until = 0.0
            self.requests_by_path: Counter[str] = Counter()
            self.counters: Counter[str] = Counter()
            self.tokens: dict[str, float] = {}
            self._seed_data()

    def _seed_data(self) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "system": self.system,
                "requests": sum(self.requests_by_path.values()),
                "requests_by_path": dict(self.requests_by_path),
                "token_requests": self.counters["token_requests"],
                "tokens_issued": self.counters["tokens_issued"],
                "dropped_after_commit": self.counters["dropped_after_commit"],
                "faults_injected": self.counters["faults_injected"],
                "faults": self.faults.as_dict(),
            }

    def set_faults(self, **changes: Any) -> None:
        with self._lock:
            outage = changes.get("outage")
            self.faults.update(changes)
            if outage is not None:
                self.outage_until = self.now() + self.faults.outage if self.faults.outage else 0.0

    # -- clock: tests move it instead of sleeping ------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() + self._clock_offset

    def utcnow(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self._clock_offset)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    # -- tokens ----------------------------------------------------------------------------------------------
    def issue_token(self) -> tuple[str, int]:
        with self._lock:
            token = f"mock.{secrets.token_urlsafe(24)}"
            lifetime = self.faults.token_lifetime
            self.tokens[token] = self.now() + lifetime
            self.counters["tokens_issued"] += 1
            return token, lifetime

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expires = self.tokens.get(token)
            return expires is not None and self.now() < expires

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> MockServer:
        """Serve in a background thread; port 0 picks a free one (see `.url`)."""
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._httpd = _HTTPServer((host, port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"mock-{self.system}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def serve_forever(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the calling thread until interrupted (the management commands)."""
        self._httpd = _HTTPServer((host, port), self)
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("not started")
        host = str(self._httpd.server_address[0])
        return f"http://{host}:{self.port}"

    def __enter__(self) -> MockServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch --------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", r"/__mock__/state", lambda r: json_response(200, self.state())),
            ("GET", r"/__mock__/faults", lambda r: json_response(200, self.faults.as_dict())),
            ("POST", r"/__mock__/faults", self._control_faults),
            ("POST", r"/__mock__/reset", self._control_reset),
            ("POST", r"/__mock__/clock", self._control_clock),
        ]

    def _control_faults(self, request: MockRequest) -> MockResponse:
        changes = request.json()
        if not isinstance(changes, dict):
            raise MockError(400, "Send a JSON object of faults.")
        try:
            self.set_faults(**changes)
        except ValueError as exc:
            raise MockError(400, str(exc)) from None
        return json_response(200, self.faults.as_dict())

    def _control_reset(self, request: MockRequest) -> MockResponse:
        self.reset()
        return json_response(200, self.state())

    def _control_clock(self, request: MockRequest) -> MockResponse:
        data = request.json()
        try:
            seconds = float(data["advance"])
        except (KeyError, TypeError, ValueError):
            raise MockError(400, 'Send {"advance": <seconds>}.') from None
        self.advance(seconds)
        return json_response(200, {"offset_seconds": self._clock_offset})

    def render_error(self, request: MockRequest, error: MockError) -> MockResponse:
        raise NotImplementedError

    def dispatch(self, request: MockRequest) -> MockResponse:
        try:
            if request.path.startswith(CONTROL_PREFIX):
                return self._route(request, self._compiled_control, control=True)
            with self._lock:
                self.requests_by_path[request.path] += 1
            injected = self._inject_fault(request)
            if injected is not None:
                with self._lock:
                    self.counters["faults_injected"] += 1
                return injected
            return self._route(request, self._compiled, control=False)
        except MockError as error:
            if request.path.startswith(CONTROL_PREFIX):
                return json_response(error.status, {"error": error.message})
            return self.render_error(request, error)
        except Exception:
            logger.exception("mock %s failed on %s %s", self.system, request.method, request.path)
            return self.render_error(request, MockError(500, "Internal error in the mock server."))

    def _route(self, request: MockRequest, table, *, control: bool) -> MockResponse:
        allowed = []
        for method, pattern, handler in table:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request.path_args = match.groupdict()
            return handler(request)
        if allowed:
            raise MockError(405, f"Method {request.method} is not allowed on {request.path}.")
        raise MockError(404, f"No resource at {request.path}.")

    def _inject_fault(self, request: MockRequest) -> MockResponse | None:
        with self._lock:
            faults = self.faults
            latency = faults.latency_ms
            status = None
            if self.outage_until and self.now() < self.outage_until:
                status = 503
                retry_after = max(1, int(self.outage_until - self.now() + 0.999))
            elif faults.fail_next:
                status = faults.fail_next.pop(0)
                retry_after = faults.retry_after
            elif faults.rate_limit and self.random.random() < faults.rate_limit:
                status, retry_after = 429, faults.retry_after
            elif faults.error_rate and self.random.random() < faults.error_rate:
                status, retry_after = self.random.choice((500, 503)), faults.retry_after
        if latency:
            time.sleep(latency / 1000)
        if status is None:
            return None
        messages = {429: "Too many requests.", 500: "Internal server error.", 503: "Service unavailable."}
        headers = {"Retry-After": str(retry_after)} if status in (429, 503) else {}
        return self.render_error(request, MockError(status, messages.get(status, "Injected failure."), headers=headers))

    def maybe_drop(self) -> bool:
        """For a create that has just been committed: should the answer be lost (socket closed)?"""
        with self._lock:
            rate = self.faults.drop_after_commit_rate
            if rate and self.random.random() < rate:
                self.counters["dropped_after_commit"] += 1
                return True
            return False

    def check_forbidden(self) -> None:
        if self.faults.forbid:
            raise MockError(403, "The user is not authorized to perform this action.")


def bearer_token(request: MockRequest) -> str:
    scheme, _, value = request.header("Authorization").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def basic_credentials(request: MockRequest) -> tuple[str, str] | None:
    scheme, _, value = request.header("Authorization").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
