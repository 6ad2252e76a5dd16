import socket

import pytest
from django.conf import settings
from django.db import OperationalError
from django.urls import reverse

from tests.connector.secrets import assert_no_secret_in

pytestmark = pytest.mark.django_db

REDIS_TEST_URL = settings.TEST_REDIS_URLS["broker"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_ok_without_login(client, settings):
    settings.CELERY_BROKER_URL = "memory://"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert reverse("healthz") == "/healthz"


def test_healthz_reports_a_broker_that_does_not_answer(client, settings):
    settings.CELERY_BROKER_URL = f"redis://:broker-password-xyz@127.0.0.1:{_closed_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}
    assert_no_secret_in(response.content.decode(), secrets=("broker-password-xyz",))


def test_healthz_sees_a_real_redis_broker(client, settings):
    try:
        socket.create_connection((settings.TEST_REDIS_HOST, settings.TEST_REDIS_PORT), timeout=0.5).close()
    except OSError:
        pytest.skip(f"no Redis at {REDIS_TEST_URL}")
    settings.CELERY_BROKER_URL = REDIS_TEST_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert client.get("/healthz").json() == {"database": "ok", "broker": "ok"}


def test_healthz_reports_a_database_that_does_not_answer(client, settings, monkeypatch):
    settings.CELERY_BROKER_URL = "memory://"
    from django.db.backends.base.base import BaseDatabaseWrapper

    def refuse(self, *args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: password=db-secret-xyz")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "down", "broker": "ok"}
    assert "db-secret-xyz" not in response.content.decode()


def test_embedded_broker_is_ok_when_its_folder_is_writable_and_down_when_missing(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    folder = tmp_path / "broker"
    folder.mkdir()
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    assert client.get("/healthz").status_code == 200

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "missing"),
        "data_folder_out": str(tmp_path / "missing"),
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down"


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
