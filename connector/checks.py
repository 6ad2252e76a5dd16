"""Deployment checks (`manage.py check --deploy`): warn about settings that are fine on a laptop and unsafe in
production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning

# Values that ship in the repository (.env.example, settings defaults, test settings): never a real key.
_PLACEHOLDER_MARKERS = ("change-me", "dev-insecure", "test-only", "test-fernet")


def _is_placeholder(value: str) -> bool:
    return any(marker in value.lower() for marker in _PLACEHOLDER_MARKERS)


def check_production_settings(app_configs=None, **kwargs) -> list[Warning]:
    warnings: list[Warning] = []
    if settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS:
        warnings.append(
            Warning(
                "CONNECTOR_ALLOW_LOCAL_ENDPOINTS is on: connections may call plain-http endpoints on this machine.",
                hint="It exists for the bundled mock systems and tests. Set CONNECTOR_ALLOW_LOCAL_ENDPOINTS=0.",
                id="connector.W001",
            )
        )
    if settings.DEBUG:
        warnings.append(
            Warning(
                "DEBUG is on: error pages show settings and stack traces to anyone.",
                hint="Set DEBUG=0 in production.",
                id="connector.W002",
            )
        )
    secret_key = settings.SECRET_KEY or ""
    if secret_key == getattr(settings, "DEV_SECRET_KEY", None) or _is_placeholder(secret_key):
        warnings.append(
            Warning(
                "SECRET_KEY is the development or example value.",
                hint="Set SECRET_KEY to a long random string (at least 50 characters) kept out of the repository.",
                id="connector.W003",
            )
        )
    # FERNET_KEYS itself is required when DEBUG is off (config/settings.py refuses to start without it).
    fernet_keys = [str(key) for key in (getattr(settings, "FERNET_KEYS", None) or [])]
    if not fernet_keys or any(
        key == getattr(settings, "DEV_FERNET_KEY", None) or _is_placeholder(key) for key in fernet_keys
    ):
        warnings.append(
            Warning(
                "FERNET_KEYS is empty or holds a development or example value: stored credentials are not safe.",
                hint="Set FERNET_KEYS to a random key of your own (keep older keys after it while rotating).",
                id="connector.W004",
            )
        )
    return warnings


CHECK_TAGS = (Tags.security,)
