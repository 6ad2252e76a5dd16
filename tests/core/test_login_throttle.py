"""Admin login throttling behind reverse proxies: each client is throttled on its own address (taken from the
trusted proxies' X-Forwarded-For entries), and one address trying many usernames is locked out as well."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from core.login_throttle import client_address

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True  # off in the test settings; on in production
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_ADDRESS_FAILURE_LIMIT = 20
    AxesProxyHandler.get_implementation(force=True)
    User.objects.create_superuser("admin", "admin@example.com", "the-right-password")
    yield settings
    AxesProxyHandler.get_implementation(force=True)


def attempt(client, username="admin", password="wrong", **headers):
    login = reverse("admin:login")
    return client.post(login, {"username": username, "password": password, "next": "/admin/"}, **headers).status_code


def test_behind_one_proxy_two_clients_are_throttled_separately(client, throttled):
    throttled.TRUSTED_PROXY_COUNT = 1  # the proxy connects from 127.0.0.1 and appends the client's address
    first = {"HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    second = {"HTTP_X_FORWARDED_FOR": "198.51.100.20"}

    answers = [attempt(client, **first) for _ in range(6)]

    assert answers[4:] == [429, 429]  # the first client is locked out
    assert attempt(client, **second) == 200  # the second, behind the same proxy, is not
    assert attempt(client, password="the-right-password", **second) == 302


def test_a_client_cannot_pick_its_address_by_forging_the_header(client, throttled):
    throttled.TRUSTED_PROXY_COUNT = 1
    # The client sends its own X-Forwarded-For; the proxy appends the address it really saw.
    answers = [attempt(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.10") for n in range(6)]
    assert answers[4:] == [429, 429]


def test_without_trusted_proxies_the_header_is_ignored(client, throttled):
    throttled.TRUSTED_PROXY_COUNT = 0
    answers = [attempt(client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(6)]
    assert answers[4:] == [429, 429]  # all from REMOTE_ADDR


def test_failed_logins_on_many_usernames_lock_the_address(client, throttled):
    throttled.TRUSTED_PROXY_COUNT = 1
    spraying = {"HTTP_X_FORWARDED_FOR": "203.0.113.66"}

    answers = [attempt(client, username=f"user{n}", **spraying) for n in range(20)]

    assert answers[:19] == [200] * 19  # no username reached its own limit
    assert answers[19] == 429  # the twentieth failure from the address locks it
    assert attempt(client, password="the-right-password", **spraying) == 429
    assert attempt(client, password="the-right-password", HTTP_X_FORWARDED_FOR="203.0.113.67") == 302


def test_a_successful_login_does_not_forget_the_addresses_other_failures(client, throttled):
    throttled.TRUSTED_PROXY_COUNT = 1
    office = {"HTTP_X_FORWARDED_FOR": "203.0.113.80"}
    for n in range(19):
        attempt(client, username=f"user{n}", **office)
    assert attempt(client, password="the-right-password", **office) == 302
    client.logout()
    assert attempt(client, username="user-next", **office) == 429


@pytest.mark.parametrize(
    "count, forwarded, expected",
    [
        (0, "203.0.113.1", "127.0.0.1"),
        (1, "203.0.113.1", "203.0.113.1"),
        (1, "10.9.9.9, 203.0.113.1", "203.0.113.1"),
        (2, "10.9.9.9, 203.0.113.1, 192.0.2.7", "203.0.113.1"),
        (2, "203.0.113.1", "127.0.0.1"),  # fewer entries than proxies: not through all of them
        (1, "203.0.113.1:51234", "203.0.113.1"),
        (1, "[2001:db8::7]:443", "2001:db8::7"),
        (1, "2001:db8::7", "2001:db8::7"),
        (1, "not-an-address", "127.0.0.1"),
        (1, "", "127.0.0.1"),
    ],
)
def test_client_address(settings, count, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = count
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_processes_start_without_the_axes_banner():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AXES_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",  # the production settings: axes on
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        FERNET_KEYS=secrets.token_urlsafe(32),
        LOG_LEVEL="INFO",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "AXES: BEGIN" not in result.stdout + result.stderr
