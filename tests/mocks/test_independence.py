"""The mocks stand in for Fusion and Commerce as their vendors document them, so they must not lean on the
connector code they are used to test: importing them loads no product package, the Commerce mock does not load
the Fusion mock, and neither needs Django. Each check imports in a fresh interpreter, where nothing else has
been loaded yet."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = {"audit", "commerce", "config", "connector", "core", "fusion", "mappings", "sync"}


def modules_loaded_by(*names: str) -> set[str]:
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"for name in {list(names)!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def packages(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_the_mocks_load_no_product_package():
    loaded = modules_loaded_by("mocks.fusion", "mocks.commerce", "mocks.server", "mocks.cli")
    assert {"mocks.fusion", "mocks.commerce"} <= loaded  # the check saw the imports it is about
    assert packages(loaded) & PRODUCT_PACKAGES == set()


def test_the_commerce_mock_does_not_load_the_fusion_mock():
    loaded = modules_loaded_by("mocks.commerce")
    assert "mocks.commerce" in loaded
    assert sorted(m for m in loaded if m == "mocks.fusion" or m.startswith("mocks.fusion.")) == []


def test_the_mocks_run_without_django():
    # Only the management commands need Django (mocks.cli imports it when a command serves).
    loaded = modules_loaded_by("mocks.fusion", "mocks.commerce", "mocks.cli")
    assert "django" not in packages(loaded)
