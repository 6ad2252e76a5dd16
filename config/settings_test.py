"""Test settings: the production settings with a throwaway key, fast hashing and eager-free Celery."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("FERNET_KEYS", "test-fernet-key-one")
os.environ.setdefault("SECURE_COOKIES", "0")
# Tests (and the end-to-end runs' processes, which use these settings) use the mock systems, so the app is
# installed whatever the environment says.
os.environ["CONNECTOR_MOCKS"] = "1"

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never reach a broker unless they start one: a wake-up that cannot be sent is logged and left to
# the relay, exactly as in production.
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
AXES_ENABLED = os.environ.get("TEST_AXES_ENABLED", "0") == "1"
# Static files are not collected for tests: serve nothing through WhiteNoise.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
# Refusal counters are written by the tests themselves (commerce.rejections.rejections_flush), never by the
# background thread, whose own database connection would see none of a test's uncommitted rows.
CONNECTOR_REJECTION_FLUSH_SECONDS = float(os.environ.get("TEST_REJECTION_FLUSH_SECONDS", "86400"))

# Redis databases the tests use, one per purpose, on the Redis at TEST_REDIS_HOST:TEST_REDIS_PORT. Tests take
# their numbers from here, never their own: TEST_REDIS_DB_BASE moves all four, so that two runs on one machine
# (a developer's and CI's, say) keep apart.
TEST_REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
TEST_REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
_redis_base = int(os.environ.get("TEST_REDIS_DB_BASE", "2"))
# Under pytest-xdist each worker (gw0, gw1, ...) takes the next four databases, as it takes its own test database.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_redis_base += 4 * int(_xdist_worker) if _xdist_worker.isdigit() else 0
TEST_REDIS_DBS = {
    "cache": _redis_base,
    "broker": _redis_base + 1,
    "e2e_broker": _redis_base + 2,
    "e2e_cache": _redis_base + 3,
}

TEST_REDIS_URLS = {
    purpose: f"redis://{TEST_REDIS_HOST}:{TEST_REDIS_PORT}/{db}" for purpose, db in TEST_REDIS_DBS.items()
}
