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
