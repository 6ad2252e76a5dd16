import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production(settings):
    """Settings as a production deployment sets them."""
    settings.DEBUG = False
    settings.SECRET_KEY = secrets.token_urlsafe(48)
    settings.FERNET_KEYS = [secrets.token_urlsafe(32)]
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.ALLOWED_HOSTS = ["connector.example.com"]
    return settings


def deploy_issue_ids():
    return {issue.id for issue in run_checks(include_deployment_checks=True)}


def test_production_settings_pass_the_deploy_checks(production):
    assert run_checks(include_deployment_checks=True) == []


def test_local_endpoints_are_flagged(production):
    production.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    assert "connector.W001" in deploy_issue_ids()


def test_debug_is_flagged(production):
    production.DEBUG = True
    assert "connector.W002" in deploy_issue_ids()


def test_development_secret_key_is_flagged(production):
    production.SECRET_KEY = production.DEV_SECRET_KEY
    assert "connector.W003" in deploy_issue_ids()
    production.SECRET_KEY = "change-me-to-a-long-random-string"  # the .env.example value
    assert "connector.W003" in deploy_issue_ids()


@pytest.mark.parametrize(
    "keys", [["dev-insecure-fernet-key-change-me"], ["change-me-new-key", "change-me-old-key"], []]
)
def test_default_fernet_keys_are_flagged(production, keys):
    production.FERNET_KEYS = keys
    assert "connector.W004" in deploy_issue_ids()


def _import_settings(**overrides):
    """Import config.settings in a fresh interpreter with this environment (nothing from a developer's .env
    can fill in what is left out: every variable it could hold is given here or checked below)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FERNET_", "DEBUG", "SECRET_KEY"))}
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(len(s.FERNET_KEYS))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _dotenv_sets(name):
    dotenv = ROOT / ".env"
    return dotenv.exists() and any(line.startswith(f"{name}=") for line in dotenv.read_text().splitlines())


@pytest.mark.parametrize("given", [None, "", " , "])
def test_settings_refuse_to_start_without_fernet_keys_when_debug_is_off(given):
    if given is None and _dotenv_sets("FERNET_KEYS"):
        pytest.skip("this checkout's .env sets FERNET_KEYS")
    overrides = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(48)}
    if given is not None:
        overrides["FERNET_KEYS"] = given
    result = _import_settings(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "FERNET_KEYS is required" in result.stderr


def test_settings_start_with_fernet_keys_or_with_debug_on():
    key = secrets.token_urlsafe(48)
    assert _import_settings(DEBUG="0", SECRET_KEY=key, FERNET_KEYS="k1,k2").stdout.strip() == "2"
    assert _import_settings(DEBUG="1", SECRET_KEY=key, FERNET_KEYS="").stdout.strip() == "1"  # SECRET_KEY, dev only


def test_the_checks_only_run_for_deploy(settings):
    settings.DEBUG = True
    settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS = True
    assert not {issue.id for issue in run_checks() if issue.id.startswith("connector.")}


def test_manage_py_check_deploy_with_a_production_environment_reports_no_issues():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "SECURE_"))}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        FERNET_KEYS=secrets.token_urlsafe(32),
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        ALLOWED_HOSTS="connector.example.com",
        # A developer's .env may exist in the checkout; these keep it from loosening the check.
        SECURE_COOKIES="1",
        CONNECTOR_ALLOW_LOCAL_ENDPOINTS="0",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
