"""The reference point the receiver's targets were set against, next to the floor: a minimal Django + DRF view
doing what the floor does (the same HMAC check, one INSERT into the floor's table) behind the middleware a new
Django project starts with, under the same gunicorn settings. It shows what Django itself costs on the machine of
the run, so the connector's figure can be read against both. Not the product: bench/ingest.py runs it with
--reference.

    BENCH_FLOOR_DSN=postgresql://postgres@127.0.0.1:5432/bench_floor BENCH_SECRET=... gunicorn minimal_django
"""

from __future__ import annotations

import hashlib
import hmac
import os
from urllib.parse import urlsplit

from django.conf import settings

_dsn = urlsplit(os.environ.get("BENCH_FLOOR_DSN", "postgresql://postgres@127.0.0.1:5432/bench_floor"))
settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-minimal-django-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions", "rest_framework"],
    MIDDLEWARE=[  # what `django-admin startproject` writes, less messages (no app for it here)
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _dsn.path.lstrip("/"),
            "USER": _dsn.username or "postgres",
            "HOST": _dsn.hostname or "127.0.0.1",
            "PORT": _dsn.port or 5432,
            "CONN_MAX_AGE": 600,
        }
    },
    USE_TZ=True,
)

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

SECRET = os.environ.get("BENCH_SECRET", "bench-secret").encode()


class Receive(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        body = request.body
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.META.get("HTTP_X_COMMERCE_SIGNATURE", "").encode(), expected.encode()):
            return Response({"error": "bad_signature"}, status=401)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO deliveries (request_id, body) VALUES (%s, %s)",
                [request.META.get("HTTP_X_ADOBE_COMMERCE_REQUEST_ID", ""), body],
            )
        return Response({"op": "success"})


urlpatterns = [path("", Receive.as_view())]
application = get_wsgi_application()
