"""The adapters stand on their own: each of commerce and fusion loads, models, admin and all, with only the layers
below it installed, and never pulls in the other adapter or the orchestrator. Checked in a fresh interpreter,
so nothing another test imported can hide an import."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import importlib, pkgutil, sys
from django.conf import settings
from config import settings_test as base
values = {{name: getattr(base, name) for name in dir(base) if name.isupper()}}
values["INSTALLED_APPS"] = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django_celery_beat", "import_export", "audit", "connector", "mappings", {app!r},
]
settings.configure(**values)
import django
django.setup()
package = importlib.import_module({app!r})
for module in pkgutil.walk_packages(package.__path__, prefix={app!r} + "."):
    importlib.import_module(module.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & {forbidden!r})
print(",".join(loaded))
"""


@pytest.mark.parametrize(
    ("app", "forbidden"),
    [("commerce", {"fusion", "sync", "mocks"}), ("fusion", {"commerce", "sync", "mocks"})],
)
def test_an_adapter_loads_without_the_other_adapter_or_the_orchestrator(app, forbidden):
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(app=app, forbidden=forbidden)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", f"importing {app} loaded {result.stdout.strip()}"
