"""Settings, all read from the environment (see .env.example for every variable)."""

import contextlib
import ipaddress
import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A development key is only acceptable with DEBUG on; checks.py flags it in production.
DEV_SECRET_KEY = "dev-insecure-ml-connector-key-change-me"
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (see .env.example).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "sync.apps.ConnectorAdminConfig",  # django.contrib.admin with the connector's own site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_celery_beat",
    "axes",
    "import_export",
    "audit",
    "connector",
    "commerce",
    "fusion",
    "mappings",
    "sync",
]

# The mock Fusion and Commerce servers (`manage.py mock_fusion`, `manage.py mock_commerce`) for development and
# demos: the `mocks` app is installed only when asked. Never in production. The test settings always install it.
CONNECTOR_MOCKS = env.bool("CONNECTOR_MOCKS", default=False)
if CONNECTOR_MOCKS:
    INSTALLED_APPS.append("mocks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'connector.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # An unreachable database fails fast (health check, workers) instead of waiting for the TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5)
    )
    # Parameters travel apart from the SQL: the webhook's INSERTs (a raw body, a JSON document) are not
    # re-parsed as literals on every delivery.
    DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", env.bool("DB_SERVER_SIDE_BINDING", default=True))
    # A statement run this many times on a connection is prepared there, then only executed: the webhook's one
    # INSERT statement is planned once per connection, not per delivery (halves PostgreSQL's CPU per webhook,
    # bench/README.md). Django disables psycopg's preparing unless given a threshold; 5 is psycopg's own
    # default. DB_PREPARE_THRESHOLD=none turns it off (a PgBouncer older than 1.21 in transaction mode).
    _prepare = env.str("DB_PREPARE_THRESHOLD", default="5").strip().lower()
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", None if _prepare in ("", "none") else int(_prepare))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Encryption at rest for credentials: the first key encrypts, every key decrypts (rotation). Required when DEBUG
# is off: falling back to SECRET_KEY would tie the stored credentials to it (rotating it would lose them). With
# DEBUG on, a developer's machine may still use SECRET_KEY.
DEV_FERNET_KEY = "dev-insecure-fernet-key-change-me"
FERNET_KEYS = [key.strip() for key in env.list("FERNET_KEYS", default=[]) if key.strip()]
if not FERNET_KEYS:
    if not DEBUG:
        raise environ.ImproperlyConfigured(
            "FERNET_KEYS is required when DEBUG is off: the keys that encrypt the stored credentials, comma-separated, "
            "the first one encrypting (see .env.example)."
        )
    FERNET_KEYS = [SECRET_KEY]

SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
# Once HSTS is on, cover subdomains and allow preloading unless told otherwise.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# Throttle admin logins against password guessing: a username from one address is locked after
# AXES_FAILURE_LIMIT failures, an address (whatever usernames it tries) after AXES_ADDRESS_FAILURE_LIMIT.
# Behind reverse proxies the client address is taken from X-Forwarded-For, trusting the last
# TRUSTED_PROXY_COUNT entries (core/login_throttle.py); 0 uses REMOTE_ADDR, so without a proxy a forged header
# changes nothing. With a proxy and 0, every client shares the proxy's address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=AXES_FAILURE_LIMIT * 4)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "core.login_throttle.LoginThrottleHandler"
AXES_CLIENT_IP_CALLABLE = "core.login_throttle.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_SENSITIVE_PARAMETERS = ["password"]
AXES_VERBOSE = False  # no "AXES: BEGIN ..." line from every process at start-up

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker: no server needed to try the connector.
    _queue_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
    }
    # kombu's filesystem transport does not create its folders; a missing one fails every publish.
    for _folder in (_queue_dir, VAR_DIR / "broker-processed", VAR_DIR / "broker-control"):
        with contextlib.suppress(OSError):  # read-only checkout: /healthz reports the broker down
            _folder.mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Explicit, and longer than the longest task: Redis re-delivers unacked messages after it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# Celery's Django fixup closes every database connection before and after every task unless this is set, so a
# worker opened a PostgreSQL backend per task (about one per order: backend start-up is PostgreSQL CPU). Set, the
# fixup closes them only every this many tasks, and config/celery.py applies CONN_MAX_AGE and the health checks
# around each task as Django does around a request (a broken or aged connection is still dropped).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
# One queue per kind of work, so each can get its own workers (README "Running at scale"): posting records to
# Fusion, the scheduled syncs (relay, backfill, reference refresh, purge), and shipping GL journal batches. A
# worker started without -Q consumes all three.
CELERY_TASK_QUEUES = (Queue("posting"), Queue("sync"), Queue("journals"))
CELERY_TASK_DEFAULT_QUEUE = "sync"
CELERY_TASK_ROUTES = {
    "connector.process_record": {"queue": "posting"},
    "connector.wake_records": {"queue": "posting"},
    "commerce.delivery_record": {"queue": "posting"},
    "fusion.ship_journals": {"queue": "journals"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- The connector --------------------------------------------------------------------------------
# Admits http://127.0.0.1 / localhost endpoints (the bundled mock systems and tests). Never in production.
CONNECTOR_ALLOW_LOCAL_ENDPOINTS = env.bool("CONNECTOR_ALLOW_LOCAL_ENDPOINTS", default=False)
# The https address Commerce reaches this connector at (e.g. https://connector.example.com): the connection page
# shows the webhook URL to give Commerce built from it. Empty: the address the admin is browsed at.
CONNECTOR_PUBLIC_URL = env.str("CONNECTOR_PUBLIC_URL", default="")
CONNECTOR_WEBHOOK_MAX_BYTES = env.int("CONNECTOR_WEBHOOK_MAX_BYTES", default=1024 * 1024)
CONNECTOR_PAYLOAD_RETENTION_DAYS = env.int("CONNECTOR_PAYLOAD_RETENTION_DAYS", default=90)
CONNECTOR_LEASE_SECONDS = env.int("CONNECTOR_LEASE_SECONDS", default=300)
# After a write whose outcome is unknown, the next attempt (which looks the document up first) waits at least
# this long, so a create still running in Fusion is found rather than repeated.
CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = env.int("CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS", default=120)
# The webhook receiver caches a connection and its parsed keys this long (a disabled connection or a new key takes
# effect within it; a failed verification reloads sooner).
CONNECTOR_WEBHOOK_CACHE_SECONDS = env.float("CONNECTOR_WEBHOOK_CACHE_SECONDS", default=5.0)
# Refused webhook requests are counted in memory and written to the rejection counters this often (per process).
CONNECTOR_REJECTION_FLUSH_SECONDS = env.float("CONNECTOR_REJECTION_FLUSH_SECONDS", default=5.0)
# A stored delivery no worker has read after this long (a lost wake-up, a broker that was down) is read on the
# relay's next run.
CONNECTOR_DELIVERY_GRACE_SECONDS = env.int("CONNECTOR_DELIVERY_GRACE_SECONDS", default=15)
# The Commerce backfill re-reads this much before its watermark (Commerce stamps updated_at at transaction start),
# looks this far back on a connection's first run, and stops a run after this many pages or seconds (well inside
# CELERY_TASK_SOFT_TIME_LIMIT); the next run carries on from the watermark.
CONNECTOR_BACKFILL_OVERLAP_SECONDS = env.int("CONNECTOR_BACKFILL_OVERLAP_SECONDS", default=300)
CONNECTOR_BACKFILL_FIRST_HOURS = env.int("CONNECTOR_BACKFILL_FIRST_HOURS", default=24)
CONNECTOR_BACKFILL_MAX_PAGES = env.int("CONNECTOR_BACKFILL_MAX_PAGES", default=50)
CONNECTOR_BACKFILL_MAX_SECONDS = env.float("CONNECTOR_BACKFILL_MAX_SECONDS", default=150.0)
# The sync from Fusion re-reads this much before the items watermark (Fusion stamps a change when its transaction
# starts), and a scheduled run stops after this long, after the batch in hand (well inside
# CELERY_TASK_SOFT_TIME_LIMIT); the next run carries on from the watermark.
CONNECTOR_FUSION_SYNC_OVERLAP_SECONDS = env.int("CONNECTOR_FUSION_SYNC_OVERLAP_SECONDS", default=300)
CONNECTOR_FUSION_SYNC_MAX_SECONDS = env.float("CONNECTOR_FUSION_SYNC_MAX_SECONDS", default=240.0)
# How many Commerce writes of a batch the sync from Fusion sends at once.
CONNECTOR_FUSION_SYNC_COMMERCE_CONCURRENCY = env.int("CONNECTOR_FUSION_SYNC_COMMERCE_CONCURRENCY", default=4)
CONNECTOR_HTTP_TIMEOUT = (
    env.float("CONNECTOR_HTTP_CONNECT_TIMEOUT", default=5.0),
    env.float("CONNECTOR_HTTP_READ_TIMEOUT", default=30.0),
)
# The proxy for calls to Fusion and Commerce (http://host:port). The clients ignore HTTPS_PROXY, NO_PROXY, .netrc
# and the other variables requests would otherwise read from the environment: only this setting.
CONNECTOR_HTTPS_PROXY = env.str("CONNECTOR_HTTPS_PROXY", default="").strip()
if CONNECTOR_HTTPS_PROXY and not CONNECTOR_HTTPS_PROXY.startswith(("http://", "https://")):
    raise environ.ImproperlyConfigured("CONNECTOR_HTTPS_PROXY must be an http:// or https:// URL (see .env.example).")
# The admin dashboard turns a connection red when its oldest document not yet in Fusion (or webhook delivery not
# yet read) has waited longer than this.
CONNECTOR_DASHBOARD_PENDING_ALARM_MINUTES = env.int("CONNECTOR_DASHBOARD_PENDING_ALARM_MINUTES", default=15)

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="text")  # "text" or "json"
# Libraries that log credentials at DEBUG/INFO (oauthlib: the OAuth 1.0a parameters, access token included, and
# the signature base string; requests_oauthlib: the signed Authorization header and token answers) stay at
# WARNING or above whatever LOG_LEVEL says. (urllib3 logs the method, path and query of each call, never headers.)
CREDENTIAL_LOGGERS = ("oauthlib", "requests_oauthlib")
_CREDENTIAL_LOGGER_LEVEL = logging.getLevelName(
    max(logging.WARNING, logging.getLevelNamesMapping().get(LOG_LEVEL, logging.WARNING))
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "core.logging.RedactingFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # kombu tells at INFO what the worker's own banner already says (connections, queues, channels).
        "kombu": {"level": "WARNING"},
        **{name: {"level": _CREDENTIAL_LOGGER_LEVEL} for name in CREDENTIAL_LOGGERS},
    },
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Prometheus metrics (README "Metrics"). GET /metrics answers 404 unless one of the first two is set; with both,
# a scrape must come from an allowed address and bring the token.
CONNECTOR_METRICS_TOKEN = env.str("CONNECTOR_METRICS_TOKEN", default="")  # Authorization: Bearer <token>
# Client addresses (REMOTE_ADDR) or CIDRs that may scrape, comma-separated, e.g. 10.0.0.0/8,127.0.0.1
CONNECTOR_METRICS_ALLOWED_ADDRESSES = env.list("CONNECTOR_METRICS_ALLOWED_ADDRESSES", default=[])
for _entry in CONNECTOR_METRICS_ALLOWED_ADDRESSES:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"CONNECTOR_METRICS_ALLOWED_ADDRESSES: {_entry!r} is not an address or CIDR"
        ) from _exc
# Where processes write their values in multiprocess mode: one directory per process group (web, worker) that
# its parent process empties at start (config/metrics_dir.py); the scrape sums them all. Read from the process
# environment by config/gunicorn.py and the Procfile as well, so set it there, not only in .env.
CONNECTOR_METRICS_DIR = env.str("CONNECTOR_METRICS_DIR", default=str(VAR_DIR / "metrics"))
