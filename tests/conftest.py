import time

import pytest
from django.core.cache import cache
from django.db import connection as db_connection

from core.http import clock as http_clock


@pytest.fixture
def postgres_only(db):
    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL semantics (row locks, SKIP LOCKED); running on SQLite")


@pytest.fixture
def allow_local_endpoints(settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    return settings


@pytest.fixture
def token_cache(monkeypatch):
    """An empty shared cache, so no access token or remembered token failure leaks between tests, and no real
    waiting in core.http (read retries, token lock polling)."""
    cache.clear()
    monkeypatch.setattr(http_clock, "sleep", lambda seconds: None)
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """The wall clock core.http reads for token expiry, moved by hand: `clock["t"] += seconds`."""
    now = {"t": time.time()}
    monkeypatch.setattr(http_clock, "now", lambda: now["t"])
    return now


@pytest.fixture(autouse=True)
def _no_refusals_carried_over():
    """Refused webhook requests are counted in memory per process: none leaks from one test into another."""
    from commerce.rejections import rejections

    rejections.clear()
    yield
    rejections.clear()
