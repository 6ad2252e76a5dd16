"""The mock Fusion and Commerce servers for tests: each runs in a thread on a free 127.0.0.1 port and is stopped
when the test ends.

Use the fixtures by naming them in a test module (or a conftest):

    from tests import mockservers

    fusion_mock = mockservers.fusion_mock

or start one by hand with `running(MockFusion(...))`. `mock_connection(...)` builds a Connection whose Fusion and
Commerce URLs and credentials point at the running mocks (it needs the `allow_local_endpoints` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from connector.models import Connection
from mocks.commerce import MockCommerce
from mocks.fusion import MockFusion
from mocks.server import MockServer
from tests.factories import make_connection

MockT = TypeVar("MockT", bound=MockServer)

SEED = 20261126  # random faults are reproducible


@contextmanager
def running(mock: MockT) -> Iterator[MockT]:
    mock.start("127.0.0.1", 0)
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def fusion_mock() -> Iterator[MockFusion]:
    with running(MockFusion(seed=SEED)) as mock:
        yield mock


@pytest.fixture
def commerce_mock() -> Iterator[MockCommerce]:
    with running(MockCommerce(seed=SEED)) as mock:
        yield mock


def fusion_settings(mock: MockFusion) -> dict[str, Any]:
    return {
        "fusion_base_url": mock.url,
        "fusion_auth": Connection.FusionAuth.OAUTH2,
        "fusion_token_url": f"{mock.url}/oauth2/v1/token",
        "fusion_client_id": mock.client_id,
        "fusion_client_secret": mock.client_secret,
        "fusion_scope": mock.scope,
    }


def commerce_settings(mock: MockCommerce, *, saas: bool = False) -> dict[str, Any]:
    if saas:
        return {
            "commerce_deployment": Connection.Deployment.SAAS,
            "commerce_base_url": f"{mock.url}/{mock.tenant}",
            "commerce_ims_token_url": f"{mock.url}/ims/token/v3",
            "commerce_client_id": mock.client_id,
            "commerce_client_secret": mock.client_secret,
        }
    return {
        "commerce_deployment": Connection.Deployment.PAAS,
        "commerce_base_url": mock.url,
        "commerce_consumer_key": mock.consumer_key,
        "commerce_consumer_secret": mock.consumer_secret,
        "commerce_access_token": mock.access_token,
        "commerce_access_token_secret": mock.access_token_secret,
    }


def mock_connection(
    fusion: MockFusion | None = None, commerce: MockCommerce | None = None, *, saas: bool = False, **overrides: Any
) -> Connection:
    """A saved Connection pointing at the given running mocks; `overrides` win (e.g. a wrong secret)."""
    values: dict[str, Any] = {}
    if fusion is not None:
        values.update(fusion_settings(fusion))
    if commerce is not None:
        values.update(commerce_settings(commerce, saas=saas))
    values.update(overrides)
    return make_connection(**values)
