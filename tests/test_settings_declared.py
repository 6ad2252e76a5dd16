"""Every CONNECTOR_* setting the code reads is declared, with its default, in config/settings.py and listed in
.env.example, so an operator can find and set each one."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("config", "core", "audit", "connector", "mappings", "commerce", "fusion", "sync")
NAME = re.compile(r"\bCONNECTOR_[A-Z0-9_]+\b")


def _names_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts and path.name != "settings.py":
                names |= set(NAME.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_connector_setting_the_code_reads_is_declared_in_settings():
    read = _names_read_by_the_code()
    assert read, "the scan found no CONNECTOR_* setting at all: the test would prove nothing"
    undeclared = sorted(name for name in read if not hasattr(settings, name))
    assert undeclared == []


def test_every_declared_connector_setting_is_listed_in_env_example():
    declared = set(NAME.findall((ROOT / "config" / "settings.py").read_text(encoding="utf-8")))
    listed = set(re.findall(r"^#?\s*(CONNECTOR_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    # CONNECTOR_HTTP_TIMEOUT is built from the two listed CONNECTOR_HTTP_*_TIMEOUT variables.
    assert sorted(declared - listed - {"CONNECTOR_HTTP_TIMEOUT"}) == []
