"""The bare floor for bench/ingest.py: a minimal WSGI app doing what the receiver must at the least do, and no
more: read the body, check the HMAC-SHA256 in constant time, one INSERT (autocommit, so durable before the
answer), answer {"op":"success"}. Run under the same gunicorn settings as the Django app.

    BENCH_FLOOR_DSN=postgresql://postgres@127.0.0.1:5432/bench_floor BENCH_SECRET=... gunicorn bench.floor:app
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

import psycopg

DSN = os.environ.get("BENCH_FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/bench_floor")
SECRET = os.environ.get("BENCH_SECRET", "bench-secret").encode()
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS deliveries (id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), "
    "request_id text NOT NULL, body bytea NOT NULL)"
)

_local = threading.local()  # one connection per worker thread (gthread) or process (sync)


def _db() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN, autocommit=True)
    return conn


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    given = environ.get("HTTP_X_COMMERCE_SIGNATURE", "")
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if environ.get("REQUEST_METHOD") != "POST" or not hmac.compare_digest(given.encode(), expected.encode()):
        start_response("401 Unauthorized", [("Content-Type", "application/json")])
        return [b'{"error":"bad_signature"}']
    _db().execute(
        "INSERT INTO deliveries (request_id, body) VALUES (%s, %s)",
        (environ.get("HTTP_X_ADOBE_COMMERCE_REQUEST_ID", ""), body),
    )
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "16")])
    return [b'{"op":"success"}']
