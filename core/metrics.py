"""The connector's Prometheus metrics that are counted where things happen (README "Metrics").

Plain definitions, importable from any layer. Figures that are database state (records by state, what is
pending, journal batches, sync runs) are not kept here: the scrape computes them from the database
(sync/metrics.py), so every process agrees on them and none has to be alive to report them.

In several processes (gunicorn workers, Celery pool children) each process writes its values to files in
PROMETHEUS_MULTIPROC_DIR, read and summed at scrape time: see `multiprocess_files` and config/gunicorn.py,
config/celery.py. Labels are bounded: a connection slug, a system, a method, a resource name, never an id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import requests
from celery.exceptions import SoftTimeLimitExceeded
from prometheus_client import Counter, Histogram

from core.errors import OutcomeUnknownError, TransientError

WEBHOOK_DELIVERIES = Counter(
    "ml_connector_webhook_deliveries",
    "Commerce webhook requests answered by the door: accepted (stored) or refused, with the reason.",
    ["connection", "outcome", "reason"],
)
POSTING_LATENCY = Histogram(
    "ml_connector_posting_latency_seconds",
    "From the delivery's receipt to its AR document posted (or adopted) in Fusion.",
    ["connection"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
RECORD_RETRIES = Counter(
    "ml_connector_record_retries",
    "Posting attempts that failed transiently and were scheduled again (the last one parks the record).",
    ["connection", "reason"],
)
HTTP_REQUESTS = Counter(
    "ml_connector_http_requests",
    "Calls to Fusion and Commerce (token endpoints included), by resource and status class or error kind.",
    ["system", "method", "resource", "outcome"],
)

# Adobe Commerce PaaS `/rest/<store>/V1/<resource>`, SaaS `/V1/<resource>`; Fusion
# `/<root>/resources/<version>/<resource>`: the resource is the segment after these, named by the code.
_RESOURCE = re.compile(r"[A-Za-z][A-Za-z_]{0,63}")
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
OTHER = "other"


def resource_of(url: str) -> str:
    """A low-cardinality name for what a URL addresses: `receivablesInvoices`, `orders`, `token`; never an id,
    a store code or a query."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for marker, skip in (("resources", 2), ("V1", 1)):
        if marker in segments:
            index = segments.index(marker) + skip
            name = segments[index] if index < len(segments) else ""
            return name if _RESOURCE.fullmatch(name) else OTHER
    if "token" in segments:
        return "token"
    return OTHER


def http_observe(
    *, system: str, method: str, url: str, status: int | None = None, error: Exception | None = None
) -> None:
    """Count one HTTP attempt: its status class (`2xx`...), or the kind of failure when nothing was answered."""
    outcome = f"{status // 100}xx" if status is not None else error_kind(error)
    HTTP_REQUESTS.labels(system, method if method in _METHODS else OTHER, resource_of(url), outcome).inc()


def error_kind(error: Exception | None) -> str:
    if isinstance(error, requests.exceptions.SSLError):
        return "tls"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "connect_timeout"
    if isinstance(error, requests.exceptions.Timeout):
        return "read_timeout"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection"
    return "error"


def retry_reason(error: BaseException) -> str:
    """The class of a transient failure, for the retries counter."""
    if isinstance(error, SoftTimeLimitExceeded):
        return "time_limit"
    if isinstance(error, OutcomeUnknownError):
        return "outcome_unknown"
    if isinstance(error, TransientError):
        if error.status == 429:
            return "rate_limited"
        if error.status is not None and error.status >= 500:
            return "server_error"
        return "unreachable" if error.status is None else "transient"
    return "unexpected"


# --- multiprocess mode -----------------------------------------------------------------------------------

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """Where this process writes its values, or None when it keeps them in memory (one process, a test)."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def multiprocess_files(root: Path) -> list[str]:
    """Every value file of every process group under `root` (one directory per group: web, worker), and of
    this process's own directory wherever it is."""
    paths = set(root.glob("*.db")) | set(root.glob("*/*.db")) if root.is_dir() else set()
    own = multiprocess_dir()
    if own is not None and own.is_dir():
        paths |= set(own.glob("*.db"))
    return sorted(str(p) for p in paths)
