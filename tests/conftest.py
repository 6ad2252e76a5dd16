import pytest
from django.db import connection as db_connection


@pytest.fixture
def postgres_only(db):
    if db_connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL semantics (row locks, SKIP LOCKED); running on SQLite")


@pytest.fixture
def allow_local_endpoints(settings):
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    return settings
