import time

import pytest
from django.core.cache import cache
from django.db import connection as db_connection

from connector import http


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
    waiting in connector.http (read retries, token lock polling)."""
    cache.clear()
    monkeypatch.setattr(http, "_sleep", lambda seconds: None)
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """The wall clock connector.http reads for token expiry, moved by hand: `clock["t"] += seconds`."""
    now = {"t": time.time()}
    monkeypatch.setattr(http, "_now", lambda: now["t"])
    return now
