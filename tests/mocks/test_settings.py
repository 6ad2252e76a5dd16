"""The mocks app (and with it manage.py mock_fusion and mock_commerce) is installed only when asked with
CONNECTOR_MOCKS=1; the test settings always install it. Each case reads the settings in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def installed_apps(settings_module: str, connector_mocks: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"print(json.dumps(importlib.import_module({settings_module!r}).INSTALLED_APPS))\n"
    )
    env = {**os.environ, "SECRET_KEY": "settings-test-secret-key-0123456789abcdef", "CONNECTOR_MOCKS": connector_mocks}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("connector_mocks", "installed"), [("0", False), ("1", True)])
def test_the_mocks_app_is_installed_only_when_asked(connector_mocks, installed):
    assert ("mocks" in installed_apps("config.settings", connector_mocks)) is installed


@pytest.mark.parametrize("connector_mocks", ["0", "1"])
def test_the_test_settings_always_install_the_mocks_app_once(connector_mocks):
    assert installed_apps("config.settings_test", connector_mocks).count("mocks") == 1
