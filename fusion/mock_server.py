"""A mock Oracle Fusion Cloud ERP (identity-domain token endpoint plus the fscmRestApi resources the connector
uses), like stripe-mock: for tests and demos only, never for production.

Shapes follow reference/fusion.md: `/oauth2/v1/token`, `/fscmRestApi/resources/11.13.18.05/<resource>`, the
`items/count/hasMore/limit/offset/links` envelope, `q` expressions joined with `and`, V4 JSON errors with
`o:errorDetails`. State is in memory. Use it in-process (`MockFusion().start()`) or as a process
(`python manage.py mock_fusion --port 8801`).

The first half of this module is the machinery every mock system shares (threaded HTTP server, fault injection,
the `/__mock__/` control surface, a clock tests can move); commerce.mock_server builds on it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import csv
import dataclasses
import io
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__mock__/"


# ---------------------------------------------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------------------------------------------


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


FAULT_HELP = {
    "latency_ms": "milliseconds added to every request",
    "error_rate": "share (0-1) of requests answered with a random 500 or 503",
    "rate_limit": "share (0-1) of requests answered 429 with Retry-After",
    "retry_after": "seconds in the Retry-After of 429 and 503 answers",
    "outage": "answer every request 503 for this many seconds from start",
    "drop_after_commit_rate": "share (0-1) of creates committed, then the connection closed without an answer",
    "token_lifetime": "seconds a new access token lives (expires_in)",
    "forbid": "answer authenticated API calls 403, as for a user without the role",
    "ess_running_polls": "ESS status polls answered RUNNING before the end state",
    "ess_error": "every import job ends in ERROR",
}


def add_fault_arguments(parser, faults_class: type[Faults] = Faults) -> None:
    """One CLI flag per fault (--latency-ms, --error-rate, ...), so the command line matches /__mock__/faults."""
    for f in dataclasses.fields(faults_class):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        text = FAULT_HELP.get(f.name, f.name)
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif f.type in ("int", int):
            parser.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
        elif f.type in ("float", float):
            parser.add_argument(flag, type=float, default=default, help=f"{text} (default {default})")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random faults, for reproducible runs")


def faults_from_options(options: dict[str, Any], faults_class: type[Faults] = Faults) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(faults_class)} - {"fail_next"}
    return {name: options[name] for name in names if options.get(name) is not None}


def add_server_arguments(parser, *, port: int) -> None:
    """The listening address of a mock_* command."""
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def serve_from_command(command, build: Callable[[], MockServer], *, host: str, port: int, banner: str) -> None:
    """The body of a mock_* command: build the mock (a refused flag is a CommandError), print the banner, serve
    until Ctrl-C."""
    # Imported here so the mock itself stays usable without Django.
    from django.core.management.base import CommandError

    try:
        mock = build()
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    command.stdout.write(
        banner + "\n  (the connector needs CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 to call it). Ctrl-C stops it."
    )
    try:
        mock.serve_forever(host, port)
    except KeyboardInterrupt:
        command.stdout.write("Stopped.")
    except OSError as exc:
        raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------------
# Fusion: q expressions, finders, collections
# ---------------------------------------------------------------------------------------------------------------

API_PREFIX = "/fscmRestApi/resources/"
VERSIONS = ("11.13.18.05", "latest")
MAX_LIMIT = 500
DEFAULT_LIMIT = 25

_Q_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<bare>[^\s'<>=!]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    attr: str
    op: str
    value: str


def parse_q(text: str) -> list[Clause]:
    """Parse `Attr op 'value' and Attr2 op value` (REST framework V2+ expressions). Literals are single-quoted with
    '' standing for one quote, or bare (numbers, dates). Raises MockError 400 on anything else."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _Q_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise MockError(400, f"The q parameter is not a valid expression near position {pos}: {text!r}.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1

    def bad(why: str) -> MockError:
        return MockError(400, f"The q parameter {text!r} is not valid: {why}.")

    clauses: list[Clause] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise bad("expected <attribute> <operator> <value>")
        (k1, attr), (k2, op), (k3, value) = tokens[i], tokens[i + 1], tokens[i + 2]
        if k1 != "word" or attr.lower() in ("and", "or"):
            raise bad(f"expected an attribute, got {attr!r}")
        if k2 == "word" and op.lower() == "like":
            op = "like"
        elif k2 != "op":
            raise bad(f"expected an operator after {attr}, got {op!r}")
        if k3 == "string":
            value = value[1:-1].replace("''", "'")
        elif k3 not in ("bare", "word"):
            raise bad(f"expected a value after {attr} {op}")
        clauses.append(Clause(attr, op, value))
        i += 3
        if i == len(tokens):
            return clauses
        joiner = tokens[i][1].lower()
        if tokens[i][0] != "word" or joiner != "and":
            raise bad(f"expected 'and' between conditions, got {tokens[i][1]!r}")
        i += 1


def _as_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(actual: Any, op: str, literal: str) -> bool:
    if actual is None:
        return False
    if op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in literal)
        return re.fullmatch(pattern, str(actual), re.DOTALL) is not None
    left: Any
    right: Any
    if isinstance(actual, bool):
        left, right = str(actual).lower(), literal.lower()
    elif isinstance(actual, int | float | Decimal):
        try:
            left, right = Decimal(str(actual)), Decimal(literal)
        except InvalidOperation:
            raise MockError(400, f"The value {literal!r} is not a number.") from None
    elif isinstance(actual, str) and "T" in actual and _as_datetime(actual) and _as_datetime(literal):
        left, right = _as_datetime(actual), _as_datetime(literal)
    else:
        left, right = str(actual), literal
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]


def parse_finder(text: str) -> tuple[str, dict[str, str]]:
    """`Name;var=value,var2="value, with comma"` -> ("Name", {...})."""
    name, _, rest = text.partition(";")
    variables: dict[str, str] = {}
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', rest):
        var, sep, value = part.partition("=")
        if not sep:
            raise MockError(400, f"The finder {text!r} is not valid: expected var=value.")
        variables[var.strip()] = value.strip().strip('"')
    return name.strip(), variables


@dataclass
class Collection:
    """One REST resource: its key, the attributes a client may query, order by and send, and its rows."""

    name: str
    key: str
    attributes: tuple[str, ...]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: tuple[str, ...] = ()

    def check_attribute(self, attr: str) -> None:
        if attr not in self.attributes:
            raise MockError(400, f"The attribute {attr} is not found in the resource {self.name}.")


def _int_arg(request: MockRequest, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MockError(400, f"The URL parameter {name} with value {raw!r} is not a number.") from None
    if value < 0:
        raise MockError(400, f"The URL parameter {name} must not be negative.")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Seed data
# ---------------------------------------------------------------------------------------------------------------

BUSINESS_UNIT = "Vision Operations"
SEGMENTS = ("Company", "Department", "Account", "SubAccount", "Product")


def _combination(
    ccid: int,
    combo: str,
    account_type: str,
    enabled: str = "Y",
    start: str | None = "2015-01-01",
    end: str | None = None,
    posting: str = "Y",
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "_CODE_COMBINATION_ID": ccid,
        "_CHART_OF_ACCOUNTS_ID": 5237,
        "AccountType": account_type,
        "EnabledFlag": enabled,
        "StartDateActive": start,
        "EndDateActive": end,
        "DetailPostingAllowedFlag": posting,
        "DetailBudgetingAllowedFlag": "Y",
        "SummaryFlag": "N",
        "FinancialCategory": None,
        "JgzzReconFlag": "N",
        "Reference3": None,
    }
    row.update(zip(SEGMENTS, combo.split("-"), strict=True))
    return row


SEED_COMBINATIONS = (
    _combination(626901, "01-000-1210-0000-000", "A"),  # trade receivables
    _combination(626902, "01-000-1290-0000-000", "A"),  # Commerce clearing
    _combination(626903, "01-000-2210-0000-000", "L"),  # sales tax payable
    _combination(626904, "01-000-4110-0000-000", "R"),  # product revenue
    _combination(626905, "01-000-4190-0000-000", "R"),  # discounts
    _combination(626906, "01-000-4510-0000-000", "R"),  # shipping revenue
    _combination(626907, "01-000-4520-0000-000", "R"),  # freight
    _combination(626908, "01-110-4110-0000-000", "R"),  # product revenue, web department
    _combination(626909, "01-000-6510-0000-000", "E"),  # payment provider fees
    _combination(626910, "01-000-4999-0000-000", "R", enabled="N"),  # disabled
    _combination(626911, "01-000-4998-0000-000", "R", end="2020-12-31"),  # end-dated
    _combination(626912, "01-000-4000-0000-000", "R", posting="N"),  # parent value: no detail posting
)

SEED_CUSTOMER_SITES = (
    {
        "CustomerName": "Computer Service and Rentals",
        "AccountNumber": "1008",
        "AccountDescription": "Retail",
        "CustomerAccountId": 300000047507496,
        "PartyNumber": "1006",
        "SiteName": "CSR Seattle",
        "SiteUseId": 1042,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Computer Service and Rentals",
        "AccountNumber": "1008",
        "AccountDescription": "Retail",
        "CustomerAccountId": 300000047507496,
        "PartyNumber": "1006",
        "SiteName": "CSR Portland",
        "SiteUseId": 1043,
        "PrimarySite": "N",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Commerce Web Customers",
        "AccountNumber": "20001",
        "AccountDescription": "Web store",
        "CustomerAccountId": 300000051234001,
        "PartyNumber": "20001",
        "SiteName": "WEB-US",
        "SiteUseId": 5001,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Commerce Web Customers",
        "AccountNumber": "20001",
        "AccountDescription": "Web store",
        "CustomerAccountId": 300000051234001,
        "PartyNumber": "20001",
        "SiteName": "WEB-EU",
        "SiteUseId": 5002,
        "PrimarySite": "N",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": "FR40303265045",
    },
    {
        "CustomerName": "Jane Doe",
        "AccountNumber": "20002",
        "AccountDescription": "Key account",
        "CustomerAccountId": 300000051234002,
        "PartyNumber": "20002",
        "SiteName": "Purchase NY",
        "SiteUseId": 5003,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": "12-3456789",
        "TaxRegistrationNumber": None,
    },
)


def _item(
    item_id: int, number: str, description: str, item_class: str, updated: str, status: str = "Active"
) -> dict[str, Any]:
    return {
        "ItemId": item_id,
        "ItemNumber": number,
        "ItemDescription": description,
        "ItemClass": item_class,
        "OrganizationCode": "M1",
        "OrganizationId": 207,
        "ItemStatusValue": status,
        "LifecyclePhaseValue": "Production",
        "PrimaryUOMValue": "Each",
        "CustomerOrderFlag": True,
        "CustomerOrderEnabledFlag": True,
        "CreationDate": "2025-01-15T08:00:00+00:00",
        "LastUpdateDate": updated,
    }


SEED_ITEMS = (
    _item(300100050001001, "WS12-M-Orange", "Radiant Tee M Orange", "Apparel", "2026-09-01T10:00:00+00:00"),
    _item(300100050001002, "MH01-XS-Black", "Chaz Kangeroo Hoodie XS Black", "Apparel", "2026-09-02T11:30:00+00:00"),
    _item(300100050001003, "24-MB01", "Joust Duffle Bag", "Bags", "2026-09-03T09:15:00+00:00"),
    _item(300100050001004, "SKU-LAPTOP-15", "Laptop 15in", "Computers", "2026-10-01T14:53:51+00:00"),
    _item(300100050001005, "SKU-DOCK-USB4", "USB4 docking station", "Computers", "2026-10-05T07:20:00+00:00"),
    _item(300100050001006, "SKU-WARRANTY-2Y", "Two-year warranty", "Services", "2026-10-05T07:20:00+00:00"),
    _item(
        300100050001007, "SKU-OLD-MODEM", "Dial-up modem", "Computers", "2026-08-30T16:00:00+00:00", status="Inactive"
    ),
)

INVOICE_ATTRIBUTES = (
    "CustomerTransactionId",
    "BusinessUnit",
    "TransactionSource",
    "TransactionType",
    "TransactionNumber",
    "TransactionDate",
    "AccountingDate",
    "BillingDate",
    "DueDate",
    "BillToCustomerNumber",
    "BillToCustomerName",
    "BillToSite",
    "BillToContact",
    "ShipToCustomerName",
    "ShipToCustomerNumber",
    "ShipToSite",
    "ShipToContact",
    "PaymentTerms",
    "InvoiceCurrencyCode",
    "ConversionRateType",
    "ConversionDate",
    "ConversionRate",
    "CrossReference",
    "DocumentNumber",
    "PurchaseOrder",
    "PurchaseOrderDate",
    "PurchaseOrderRevision",
    "Comments",
    "InternalNotes",
    "SpecialInstructions",
    "ReceiptMethod",
    "FirstPartyRegistrationNumber",
    "ThirdPartyRegistrationNumber",
    "StructuredPaymentReference",
    "InvoiceStatus",
    "AllowCompletion",
    "BillToPartyId",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
INVOICE_CHILDREN = (
    "receivablesInvoiceLines",
    "receivablesInvoiceDistributions",
    "receivablesInvoiceDFF",
    "receivablesInvoiceGdf",
    "receivablesInvoiceTransactionDFF",
    "receivablesInvoiceInstallments",
    "notes",
    "attachments",
)
INVOICE_READ_ONLY = (
    "CustomerTransactionId",
    "BillToPartyId",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
CREDIT_MEMO_ATTRIBUTES = (
    "CustomerTransactionId",
    "BusinessUnit",
    "TransactionSource",
    "TransactionType",
    "TransactionNumber",
    "TransactionDate",
    "AccountingDate",
    "CreditMemoCurrency",
    "BillToCustomerName",
    "BillToCustomerNumber",
    "BillToSite",
    "ShipToCustomerName",
    "ShipToCustomerNumber",
    "ShipToCustomerSite",
    "CreditMemoComments",
    "CrossReference",
    "PaymentTerms",
    "InvoiceStatus",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
CREDIT_MEMO_CHILDREN = ("receivablesCreditMemoLines", "receivablesCreditMemoDistributions", "notes", "attachments")
ACCOUNT_CLASSES = ("Revenue", "Receivable", "Freight", "Tax")
ESS_TERMINAL = ("SUCCEEDED", "WARNING", "ERROR", "FAILED", "CANCELLED")


@dataclass
class FusionFaults(Faults):
    ess_running_polls: int = 2  # ESSJobStatusRF answers RUNNING this many times before the end state
    ess_error: bool = False  # every import job ends in ERROR


@dataclass
class ErpJob:
    request_id: str
    file_name: str
    parameters: list[str]
    rows: list[list[str]]
    imported_rows: int = 0
    polls: int = 0
    final: str = "SUCCEEDED"
    last_status: str = "WAIT"
    reasons: list[str] = field(default_factory=list)


def _parameter_list(text: str) -> list[str]:
    return [p.strip().strip('"') for p in re.findall(r'(?:[^,"]|"[^"]*")+', text or "")]


class MockFusion(MockServer):
    """Oracle Fusion: OAuth 2.0 token endpoint (identity domain) and fscmRestApi resources, one server.

    Credentials: `client_id`/`client_secret` (HTTP Basic on the token endpoint), `scope` (the exact scope the
    token request must carry) and optionally `basic_users` ({username: password}) to accept Basic auth on API
    calls. Fusion-specific faults: `ess_running_polls`, `ess_error`."""

    system = "fusion"
    faults_class = FusionFaults
    faults: FusionFaults

    def __init__(
        self,
        *,
        client_id: str = "mock-fusion-client",
        client_secret: str = "mock-fusion-secret",  # noqa: S107 - the mock's demo credential
        scope: str = "urn:opc:resource:consumer::all",
        basic_users: dict[str, str] | None = None,
        seed: int | None = None,
        **faults: Any,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.basic_users = dict(basic_users or {})
        super().__init__(seed=seed, **faults)

    # -- data -----------------------------------------------------------------------------------------------
    def _seed_data(self) -> None:
        self.invoices = Collection(
            "receivablesInvoices", "CustomerTransactionId", INVOICE_ATTRIBUTES, children=INVOICE_CHILDREN
        )
        self.credit_memos = Collection(
            "receivablesCreditMemos", "CustomerTransactionId", CREDIT_MEMO_ATTRIBUTES, children=CREDIT_MEMO_CHILDREN
        )
        combos = [dict(c) for c in SEED_COMBINATIONS]
        self.combinations = Collection(
            "accountCombinationsLOV",
            "_CODE_COMBINATION_ID",
            tuple(combos[0]),
            {str(c["_CODE_COMBINATION_ID"]): c for c in combos},
        )
        sites = [dict(s) for s in SEED_CUSTOMER_SITES]
        self.customer_sites = Collection(
            "customerAccountSitesLOV", "SiteUseId", tuple(sites[0]), {str(s["SiteUseId"]): s for s in sites}
        )
        items = [dict(i, itemsV2UniqID=self._item_key(i)) for i in SEED_ITEMS]
        self.items = Collection("itemsV2", "itemsV2UniqID", tuple(items[0]), {i["itemsV2UniqID"]: i for i in items})
        self.erp_jobs: dict[str, ErpJob] = {}
        self._next_transaction_id = 300100170996400
        self._next_request_id = 51000

    @staticmethod
    def _item_key(item: dict[str, Any]) -> str:
        # Fusion's itemsV2 key is an opaque hash: clients take it from links, never build it.
        raw = f"{item['ItemId']}:{item['OrganizationId']}".encode()
        return "00020000000EACED0005770800" + raw.hex().upper()

    def combination_by_segments(self, combination: str) -> dict[str, Any] | None:
        for row in self.combinations.rows.values():
            if "-".join(str(row[s]) for s in SEGMENTS) == combination:
                return row
        return None

    def add_rows(self, resource: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add or replace reference rows (items bump LastUpdateDate), as the admin endpoint does."""
        collection = {c.name: c for c in (self.combinations, self.customer_sites, self.items)}.get(resource)
        if collection is None:
            raise MockError(
                404, f"Rows can be added to accountCombinationsLOV, customerAccountSitesLOV or itemsV2, not {resource}."
            )
        added = []
        with self._lock:
            for given in rows:
                if not isinstance(given, dict):
                    raise MockError(400, "Each row is a JSON object.")
                if collection is self.items:
                    existing = next(
                        (
                            r
                            for r in self.items.rows.values()
                            if r["ItemNumber"] == given.get("ItemNumber")
                            and r["OrganizationCode"] == given.get("OrganizationCode", "M1")
                        ),
                        None,
                    )
                    if existing is None and "ItemNumber" not in given:
                        raise MockError(400, "An item needs ItemNumber.")
                    base = (
                        dict(existing)
                        if existing
                        else _item(300100050002000 + len(self.items.rows), given["ItemNumber"], "", "", "")
                    )
                    row = {**base, **given, "LastUpdateDate": self.utcnow().isoformat()}
                    row["itemsV2UniqID"] = self._item_key(row)
                else:
                    template = dict.fromkeys(collection.attributes)
                    if collection is self.combinations and "combination" in given:
                        given = dict(given)
                        given.update(zip(SEGMENTS, given.pop("combination").split("-"), strict=True))
                        given.setdefault("_CODE_COMBINATION_ID", 627000 + len(collection.rows))
                        given.setdefault("EnabledFlag", "Y")
                    row = {**template, **given}
                    if row.get(collection.key) is None:
                        raise MockError(400, f"A {collection.name} row needs {collection.key}.")
                unknown = set(row) - set(collection.attributes)
                if unknown:
                    raise MockError(400, f"Unknown attributes for {collection.name}: {', '.join(sorted(unknown))}.")
                collection.rows[str(row[collection.key])] = row
                added.append(row)
        return added

    def state(self) -> dict[str, Any]:
        base = super().state()
        with self._lock:
            base.update(
                invoices_created=self.counters["invoices_created"],
                credit_memos_created=self.counters["credit_memos_created"],
                invoices=len(self.invoices.rows),
                credit_memos=len(self.credit_memos.rows),
                rejected_creates=self.counters["rejected_creates"],
                erp_jobs={
                    k: {
                        "status": j.last_status,
                        "rows": len(j.rows),
                        "imported_rows": j.imported_rows,
                        "polls": j.polls,
                        "reasons": j.reasons,
                    }
                    for k, j in self.erp_jobs.items()
                },
            )
        return base

    # -- routing ---------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Handler]]:
        v = r"/fscmRestApi/resources/(?P<version>[^/]+)"
        return [
            ("POST", r"/oauth2/v1/token", self.token),
            ("GET", rf"{v}/receivablesInvoices", self._api(self.list_invoices)),
            ("POST", rf"{v}/receivablesInvoices", self._api(self.create_invoice)),
            ("GET", rf"{v}/receivablesInvoices/(?P<id>[^/]+)", self._api(self.get_invoice)),
            ("PATCH", rf"{v}/receivablesInvoices/(?P<id>[^/]+)", self._api(self.patch_invoice)),
            ("GET", rf"{v}/receivablesCreditMemos", self._api(self.list_credit_memos)),
            ("POST", rf"{v}/receivablesCreditMemos", self._api(self.create_credit_memo)),
            ("GET", rf"{v}/receivablesCreditMemos/(?P<id>[^/]+)", self._api(self.get_credit_memo)),
            ("GET", rf"{v}/accountCombinationsLOV/describe", self._api(self.describe_combinations)),
            ("GET", rf"{v}/accountCombinationsLOV", self._api(self.list_combinations)),
            ("GET", rf"{v}/accountCombinationsLOV/(?P<id>[^/]+)", self._api(self.get_row(lambda: self.combinations))),
            ("GET", rf"{v}/customerAccountSitesLOV", self._api(self.list_of(lambda: self.customer_sites))),
            (
                "GET",
                rf"{v}/customerAccountSitesLOV/(?P<id>[^/]+)",
                self._api(self.get_row(lambda: self.customer_sites)),
            ),
            ("GET", rf"{v}/itemsV2", self._api(self.list_of(lambda: self.items))),
            ("GET", rf"{v}/itemsV2/(?P<id>[^/]+)", self._api(self.get_row(lambda: self.items))),
            ("POST", rf"{v}/erpintegrations", self._api(self.erp_post)),
            ("GET", rf"{v}/erpintegrations", self._api(self.erp_get)),
        ]

    def _control_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *super()._control_routes(),
            ("POST", r"/__mock__/rows/(?P<resource>[A-Za-z0-9]+)", self._control_rows),
            ("GET", r"/__mock__/erp_jobs/(?P<id>[0-9]+)", self._control_erp_job),
            ("POST", r"/__mock__/expire_tokens", self._control_expire_tokens),
        ]

    def _control_expire_tokens(self, request: MockRequest) -> MockResponse:
        self.expire_tokens()
        return json_response(200, {"expired": True})

    def _control_rows(self, request: MockRequest) -> MockResponse:
        data = request.json()
        rows = data if isinstance(data, list) else [data]
        return json_response(201, {"items": self.add_rows(request.path_args["resource"], rows)})

    def _control_erp_job(self, request: MockRequest) -> MockResponse:
        job = self.erp_jobs.get(request.path_args["id"])
        if job is None:
            raise MockError(404, "No such import job.")
        return json_response(
            200,
            {
                "request_id": job.request_id,
                "file_name": job.file_name,
                "parameters": job.parameters,
                "rows": job.rows,
                "reasons": job.reasons,
                "imported_rows": job.imported_rows,
                "final": job.final,
            },
        )

    def render_error(self, request: MockRequest, error: MockError) -> MockResponse:
        """V4+ answers JSON with o:errorDetails; older framework versions answer plain text, as Fusion does."""
        headers = dict(error.headers)
        if request.path == "/oauth2/v1/token":
            oauth = {"error": error.code or "server_error", "error_description": error.message}
            return json_response(error.status, oauth, headers)
        try:
            version = int(request.header("REST-Framework-Version") or 1)
        except ValueError:
            version = 1
        if version < 4:
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return MockResponse(error.status, error.message.encode("utf-8"), headers)
        titles = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            429: "Too Many Requests",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        body: dict[str, Any] = {
            "type": "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
            "title": titles.get(error.status, "Error"),
            "status": str(error.status),
            "o:errorDetails": [
                {"detail": error.message, "o:errorCode": error.code or None, "o:errorPath": error.parameters}
            ],
        }
        return json_response(error.status, body, headers)

    # -- auth ------------------------------------------------------------------------------------------------
    def token(self, request: MockRequest) -> MockResponse:
        with self._lock:
            self.counters["token_requests"] += 1
        credentials = basic_credentials(request)
        if credentials is None:
            form = request.form()
            credentials = (form.get("client_id", ""), form.get("client_secret", "")) if "client_id" in form else None
        if credentials is None or not (
            secrets.compare_digest(credentials[0], self.client_id)
            and secrets.compare_digest(credentials[1], self.client_secret)
        ):
            raise MockError(
                401,
                "Client authentication failed.",
                code="invalid_client",
                headers={"WWW-Authenticate": 'Basic realm="oauth"'},
            )
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            raise MockError(
                400,
                f"Grant type {form.get('grant_type')!r} is not allowed for this client.",
                code="unsupported_grant_type",
            )
        if form.get("scope", "") != self.scope:
            raise MockError(400, "The requested scope is invalid, unknown, or malformed.", code="invalid_scope")
        token, lifetime = self.issue_token()
        return json_response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": lifetime},
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _authenticate(self, request: MockRequest) -> None:
        token = bearer_token(request)
        if token:
            if self.token_valid(token):
                return
            raise MockError(
                401,
                "The access token is invalid or has expired.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        credentials = basic_credentials(request)
        if credentials is not None and self.basic_users:
            expected = self.basic_users.get(credentials[0])
            if expected is not None and secrets.compare_digest(credentials[1], expected):
                return
        raise MockError(
            401,
            "Authentication is required to access this resource.",
            headers={"WWW-Authenticate": 'Basic realm="fusion"'},
        )

    def _api(self, handler: Handler) -> Handler:
        def wrapped(request: MockRequest) -> MockResponse:
            if request.path_args.get("version") not in VERSIONS:
                raise MockError(404, "The resource version is not found; the path must carry 11.13.18.05.")
            self._authenticate(request)
            self.check_forbidden()
            return handler(request)

        return wrapped

    # -- generic collection reads ----------------------------------------------------------------------------
    def _root(self, request: MockRequest) -> str:
        return f"{request.origin}/fscmRestApi/resources/{request.path_args['version']}"

    def _present(
        self, request: MockRequest, collection: Collection, row: dict[str, Any], *, include_children: bool
    ) -> dict[str, Any]:
        fields = request.arg("fields")
        if fields:
            names = [f for f in fields.split(",") if ":" not in f]
            for name in names:
                collection.check_attribute(name)
            item = {name: row.get(name) for name in names}
        else:
            item = {k: v for k, v in row.items() if include_children or k not in collection.children}
        if (request.arg("onlyData") or "false").lower() != "true":
            href = f"{self._root(request)}/{collection.name}/{row[collection.key]}"
            item["links"] = [
                {"rel": "self", "href": href, "name": collection.name, "kind": "item"},
                {"rel": "canonical", "href": href, "name": collection.name, "kind": "item"},
            ]
        return item

    def _page(self, request: MockRequest, collection: Collection, rows: list[dict[str, Any]]) -> MockResponse:
        q = request.arg("q")
        if q:
            clauses = parse_q(q)
            for clause in clauses:
                collection.check_attribute(clause.attr)
            rows = [r for r in rows if all(_compare(r.get(c.attr), c.op, c.value) for c in clauses)]
        order_by = request.arg("orderBy")
        if order_by:
            for spec in reversed(order_by.split(",")):
                attr, _, direction = spec.partition(":")
                collection.check_attribute(attr)
                if direction not in ("", "asc", "desc"):
                    raise MockError(400, f"The orderBy direction {direction!r} is not valid.")
                rows = sorted(rows, key=_attribute_key(attr), reverse=direction == "desc")
        limit = min(_int_arg(request, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        offset = _int_arg(request, "offset", 0)
        page = rows[offset : offset + limit]
        has_more = offset + limit < len(rows)
        expand = bool(request.arg("expand")) and not request.arg("fields")
        body: dict[str, Any] = {
            "items": [self._present(request, collection, r, include_children=expand) for r in page],
            "count": len(page),
            "hasMore": has_more,
            "limit": limit,
            "offset": offset,
        }
        if (request.arg("totalResults") or "false").lower() == "true":
            body["totalResults"] = len(rows)
        href = f"{self._root(request)}/{collection.name}"
        body["links"] = [{"rel": "self", "href": request.url, "name": collection.name, "kind": "collection"}]
        if has_more:
            body["links"].append(
                {
                    "rel": "next",
                    "href": f"{href}?limit={limit}&offset={offset + limit}",
                    "name": collection.name,
                    "kind": "collection",
                }
            )
        return json_response(200, body)

    def list_of(self, collection_of: Callable[[], Collection]) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            collection = collection_of()
            if request.arg("finder"):
                name, _ = parse_finder(request.arg("finder") or "")
                raise MockError(400, f"The finder {name} is not found in the resource {collection.name}.")
            with self._lock:
                rows = list(collection.rows.values())
            return self._page(request, collection, rows)

        return handler

    def get_row(self, collection_of: Callable[[], Collection]) -> Handler:
        def handler(request: MockRequest) -> MockResponse:
            collection = collection_of()
            with self._lock:
                row = collection.rows.get(request.path_args["id"])
            if row is None:
                raise MockError(
                    404, f"The requested resource {collection.name}/{request.path_args['id']} does not exist."
                )
            return json_response(200, self._present(request, collection, row, include_children=True))

        return handler

    def list_combinations(self, request: MockRequest) -> MockResponse:
        finder = request.arg("finder")
        with self._lock:
            rows = list(self.combinations.rows.values())
        if finder:
            name, variables = parse_finder(finder)
            if name != "PrimaryKey" or set(variables) != {"_CODE_COMBINATION_ID"}:
                raise MockError(400, f"The finder {finder!r} is not found in the resource accountCombinationsLOV.")
            rows = [r for r in rows if str(r["_CODE_COMBINATION_ID"]) == variables["_CODE_COMBINATION_ID"]]
        return self._page(request, self.combinations, rows)

    def describe_combinations(self, request: MockRequest) -> MockResponse:
        attributes = [{"name": a, "queryable": True, "type": "string"} for a in self.combinations.attributes]
        return json_response(
            200,
            {
                "Resources": {
                    "accountCombinationsLOV": {"attributes": attributes, "segments": list(SEGMENTS), "delimiter": "-"}
                }
            },
        )

    # -- receivables invoices and credit memos ----------------------------------------------------------------
    def list_invoices(self, request: MockRequest) -> MockResponse:
        with self._lock:
            rows = list(self.invoices.rows.values())
        return self._page(request, self.invoices, rows)

    def list_credit_memos(self, request: MockRequest) -> MockResponse:
        with self._lock:
            rows = list(self.credit_memos.rows.values())
        return self._page(request, self.credit_memos, rows)

    def get_invoice(self, request: MockRequest) -> MockResponse:
        return self.get_row(lambda: self.invoices)(request)

    def get_credit_memo(self, request: MockRequest) -> MockResponse:
        return self.get_row(lambda: self.credit_memos)(request)

    def create_invoice(self, request: MockRequest) -> MockResponse:
        return self._create(request, self.invoices, kind="invoice")

    def create_credit_memo(self, request: MockRequest) -> MockResponse:
        return self._create(request, self.credit_memos, kind="credit_memo")

    def _reject(self, message: str, *, path: str | None = None, code: str = "") -> MockError:
        with self._lock:
            self.counters["rejected_creates"] += 1
        return MockError(400, message, code=code, parameters=path)

    def _validate_distributions(self, distributions: Any, child: str, line_numbers: set[Any], on: str) -> None:
        if not isinstance(distributions, list):
            raise self._reject(f"{child} must be a list.", path=child)
        for n, dist in enumerate(distributions):
            where = f"{child}[{n}]"
            if not isinstance(dist, dict):
                raise self._reject(f"{where} must be an object.", path=where)
            account_class = dist.get("AccountClass")
            if account_class not in ACCOUNT_CLASSES:
                raise self._reject(
                    f"The account class {account_class!r} is not valid. Valid values are {', '.join(ACCOUNT_CLASSES)}.",
                    path=f"{where}/AccountClass",
                )
            combination = dist.get("AccountCombination")
            row = self.combination_by_segments(str(combination)) if combination else None
            if row is None:
                raise self._reject(
                    f"The account combination {combination!r} is not valid.", path=f"{where}/AccountCombination"
                )
            if row["EnabledFlag"] != "Y":
                raise self._reject(
                    f"The account combination {combination} is disabled.", path=f"{where}/AccountCombination"
                )
            if (row["StartDateActive"] and on < row["StartDateActive"]) or (
                row["EndDateActive"] and on > row["EndDateActive"]
            ):
                raise self._reject(
                    f"The account combination {combination} is not active on {on}.", path=f"{where}/AccountCombination"
                )
            if row["DetailPostingAllowedFlag"] != "Y":
                raise self._reject(
                    f"The account combination {combination} does not allow detail posting.",
                    path=f"{where}/AccountCombination",
                )
            line = dist.get("InvoiceLineNumber", dist.get("CreditMemoLineNumber"))
            if account_class != "Receivable" and line is not None and line not in line_numbers:
                raise self._reject(
                    f"The line number {line} of the distribution does not exist.", path=f"{where}/InvoiceLineNumber"
                )
            for amount_field in ("Amount", "Percent"):
                if amount_field in dist and _decimal(dist[amount_field]) is None:
                    raise self._reject(f"{amount_field} is not a number.", path=f"{where}/{amount_field}")

    def _validate(self, body: dict[str, Any], collection: Collection, kind: str) -> None:
        if kind == "invoice":
            allowed = set(INVOICE_ATTRIBUTES) | set(INVOICE_CHILDREN)
            unknown = sorted(k for k in body if k not in allowed)
            if unknown:
                raise self._reject(
                    f"The attribute {unknown[0]} is not found in the resource {collection.name}.", path=unknown[0]
                )
            read_only = sorted(k for k in body if k in INVOICE_READ_ONLY)
            if read_only:
                raise self._reject(f"The attribute {read_only[0]} is read-only.", path=read_only[0])
            required: tuple[str, ...] = (
                "BusinessUnit",
                "TransactionSource",
                "TransactionType",
                "TransactionDate",
                "InvoiceCurrencyCode",
            )
            lines_child, dist_child = "receivablesInvoiceLines", "receivablesInvoiceDistributions"
        else:
            required = ("BusinessUnit", "TransactionSource", "TransactionType", "TransactionDate")
            lines_child, dist_child = "receivablesCreditMemoLines", "receivablesCreditMemoDistributions"
        for name in required:
            if body.get(name) in (None, ""):
                raise self._reject(f"The value of the attribute {name} is required.", path=name)
        if not (body.get("BillToCustomerNumber") or body.get("BillToCustomerName")):
            raise self._reject(
                "A bill-to customer is required: give BillToCustomerNumber.", path="BillToCustomerNumber"
            )
        if body.get("BusinessUnit") != BUSINESS_UNIT:
            raise self._reject(f"The business unit {body.get('BusinessUnit')!r} is not valid.", path="BusinessUnit")
        number = body.get("BillToCustomerNumber")
        if number is not None and not any(s["AccountNumber"] == str(number) for s in self.customer_sites.rows.values()):
            raise self._reject(f"The bill-to customer account {number} is not valid.", path="BillToCustomerNumber")
        for name in ("TransactionDate", "AccountingDate"):
            if body.get(name) is not None:
                try:
                    date.fromisoformat(str(body[name]))
                except ValueError:
                    raise self._reject(
                        f"The date {body[name]!r} of {name} is not valid (YYYY-MM-DD).", path=name
                    ) from None
        lines = body.get(lines_child)
        if not isinstance(lines, list) or not lines:
            raise self._reject(f"At least one line is required in {lines_child}.", path=lines_child)
        numbers: set[Any] = set()
        for n, line in enumerate(lines):
            where = f"{lines_child}[{n}]"
            if not isinstance(line, dict):
                raise self._reject(f"{where} must be an object.", path=where)
            description = line.get("Description", line.get("LineDescription", line.get("MemoLine")))
            if not description:
                raise self._reject("The line description is required.", path=f"{where}/Description")
            quantity_field = "Quantity" if kind == "invoice" else "LineQuantityCredit"
            quantity = _decimal(line.get(quantity_field, 1))
            price = _decimal(line.get("UnitSellingPrice", line.get("LineAmount")))
            if quantity is None or price is None:
                raise self._reject(f"The line needs a numeric {quantity_field} and UnitSellingPrice.", path=where)
            if kind == "credit_memo" and quantity * price > 0:
                raise self._reject("A credit memo line amount must be negative.", path=f"{where}/UnitSellingPrice")
            numbers.add(line.get("LineNumber", n + 1))
        if dist_child in body:
            on = str(body.get("AccountingDate") or body.get("TransactionDate"))
            self._validate_distributions(body[dist_child], dist_child, numbers, on)

    def _create(self, request: MockRequest, collection: Collection, *, kind: str) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise self._reject("The request body must be a JSON object.")
        with self._lock:
            self._validate(body, collection, kind)
            number = body.get("TransactionNumber")
            if number:
                for existing in collection.rows.values():
                    if (existing["TransactionNumber"], existing["TransactionSource"], existing["BusinessUnit"]) == (
                        number,
                        body["TransactionSource"],
                        body["BusinessUnit"],
                    ):
                        raise self._reject(
                            f"The transaction number {number} already exists for the transaction source "
                            f"{body['TransactionSource']} in business unit {body['BusinessUnit']}. "
                            "Enter a unique transaction number.",
                            path="TransactionNumber",
                            code="AR-855367",
                        )
            self._next_transaction_id += 1
            transaction_id = self._next_transaction_id
            stamp = self.utcnow().isoformat()
            row: dict[str, Any] = dict.fromkeys(collection.attributes)
            row.update(body)
            row.update(
                CustomerTransactionId=transaction_id,
                TransactionNumber=number or str(transaction_id)[-8:],
                InvoiceStatus=body.get("InvoiceStatus") or "Incomplete",
                AccountingDate=body.get("AccountingDate") or body["TransactionDate"],
                LegalEntityIdentifier="Vision Operations LE",
                CreationDate=stamp,
                LastUpdateDate=stamp,
            )
            if kind == "invoice":
                row.update(DueDate=body.get("DueDate") or body["TransactionDate"], BillToPartyId=300000047507490)
            collection.rows[str(transaction_id)] = row
            self.counters["invoices_created" if kind == "invoice" else "credit_memos_created"] += 1
        if self.maybe_drop():
            return DROP
        location = f"{self._root(request)}/{collection.name}/{transaction_id}"
        response = json_response(201, self._present(request, collection, row, include_children=True))
        response.headers["Location"] = location
        return response

    def patch_invoice(self, request: MockRequest) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise MockError(400, "The request body must be a JSON object.")
        not_updatable = sorted(set(body) - {"InvoiceStatus", "PaymentTerms", "TransactionDate"})
        if not_updatable:
            raise MockError(
                400,
                f"The attribute {not_updatable[0]} cannot be updated. You can update only the "
                "InvoiceStatus, PaymentTerms, and TransactionDate attributes.",
            )
        if "InvoiceStatus" in body and body["InvoiceStatus"] not in ("Complete", "Incomplete"):
            raise MockError(400, f"The invoice status {body['InvoiceStatus']!r} is not valid.")
        with self._lock:
            row = self.invoices.rows.get(request.path_args["id"])
            if row is None:
                raise MockError(
                    404, f"The requested resource receivablesInvoices/{request.path_args['id']} does not exist."
                )
            row.update(body, LastUpdateDate=self.utcnow().isoformat())
        return json_response(200, self._present(request, self.invoices, row, include_children=True))

    # -- erpintegrations ------------------------------------------------------------------------------------
    def erp_post(self, request: MockRequest) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise MockError(400, "The request body must be a JSON object.")
        if body.get("OperationName") != "importBulkData":
            raise MockError(400, f"The operation {body.get('OperationName')!r} is not supported by this mock.")
        for name in ("DocumentContent", "ContentType", "FileName", "DocumentAccount", "JobName", "ParameterList"):
            if not body.get(name):
                raise MockError(400, f"The value of the attribute {name} is required.")
        try:
            archive_bytes = base64.b64decode(body["DocumentContent"], validate=True)
        except (binascii.Error, ValueError):
            raise MockError(400, "DocumentContent is not valid base64.") from None
        with self._lock:
            self._next_request_id += 1
            request_id = str(self._next_request_id)
            job = ErpJob(request_id, str(body["FileName"]), _parameter_list(str(body["ParameterList"])), [])
            self._load_job(job, archive_bytes, str(body["JobName"]))
            self.erp_jobs[request_id] = job
        if self.maybe_drop():
            return DROP
        answer = {k: v for k, v in body.items() if k != "DocumentContent"}
        answer.update(DocumentContent=None, ReqstId=request_id)
        return json_response(201, answer)

    def _load_job(self, job: ErpJob, archive_bytes: bytes, job_name: str) -> None:
        """Unzip GlInterface.csv and decide the end state the way Journal Import would: rows must be 149 columns,
        match the source, ledger and group id of the ParameterList, and balance per journal."""
        try:
            with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
                member = next(
                    (n for n in archive.namelist() if n.rsplit("/", 1)[-1].lower() == "glinterface.csv"), None
                )
                if member is None:
                    job.final, job.reasons = "ERROR", ["GlInterface.csv is not in the zip"]
                    return
                text = archive.read(member).decode("utf-8")
        except (zipfile.BadZipFile, UnicodeDecodeError):
            job.final, job.reasons = "ERROR", ["the document is not a zip holding a UTF-8 GlInterface.csv"]
            return
        job.rows = [row for row in csv.reader(io.StringIO(text)) if row]
        if not job_name.endswith("JournalImportLauncher"):
            return
        if len(job.parameters) < 4:
            job.final, job.reasons = "ERROR", ["ParameterList needs source, ledger and group id"]
            return
        source, ledger, group = job.parameters[1], job.parameters[2], job.parameters[3]
        journals: dict[tuple[str, ...], Decimal] = {}
        for n, row in enumerate(job.rows, start=1):
            if len(row) != 149:
                job.reasons.append(f"row {n} has {len(row)} columns, expected 149")
                continue
            if (row[3], row[1], row[66]) != (source, ledger, group):
                continue
            if row[0] != "NEW":
                job.reasons.append(f"row {n}: STATUS must be NEW")
                continue
            dr, cr = _decimal(row[38] or "0"), _decimal(row[39] or "0")
            if dr is None or cr is None:
                job.reasons.append(f"row {n}: the entered amounts are not numbers")
                continue
            key = (row[1], row[2], row[5], row[42], row[45])
            journals[key] = journals.get(key, Decimal(0)) + dr - cr
            job.imported_rows += 1
        if job.imported_rows == 0:
            job.reasons.append(f"no GL_INTERFACE rows for source {source}, ledger {ledger}, group {group}")
        for journal, difference in journals.items():
            if difference:
                job.reasons.append(
                    f"journal {journal[4] or journal[3]} does not balance (debits - credits = {difference})"
                )
        if job.reasons:
            job.final = "ERROR"

    def erp_get(self, request: MockRequest) -> MockResponse:
        finder = request.arg("finder")
        if not finder:
            raise MockError(400, "This mock answers erpintegrations only with finder=ESSJobStatusRF;requestId=N.")
        name, variables = parse_finder(finder)
        if name != "ESSJobStatusRF" or "requestId" not in variables:
            raise MockError(400, f"The finder {name} is not supported by this mock.")
        with self._lock:
            job = self.erp_jobs.get(variables["requestId"])
            items = []
            if job is not None:
                job.polls += 1
                status = (
                    "RUNNING"
                    if job.polls <= self.faults.ess_running_polls
                    else ("ERROR" if self.faults.ess_error else job.final)
                )
                job.last_status = status
                items.append({"OperationName": "getESSJobStatus", "ReqstId": job.request_id, "RequestStatus": status})
        body = {
            "items": items,
            "count": len(items),
            "hasMore": False,
            "limit": DEFAULT_LIMIT,
            "offset": 0,
            "links": [{"rel": "self", "href": request.url, "name": "erpintegrations", "kind": "collection"}],
        }
        return json_response(200, body)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _attribute_key(attr: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: (row.get(attr) is None, _sort_key(row.get(attr)))


def _sort_key(value: Any) -> Any:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return (0, Decimal(str(value)), "")
    return (1, Decimal(0), str(value))
