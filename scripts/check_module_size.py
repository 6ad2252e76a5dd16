"""Fail when a product module is longer than the limit: a module that holds several concerns is several modules.

    python scripts/check_module_size.py [--limit 500]

Migrations, tests, benchmarks, scripts and the mock servers (development tools, not the product) are not counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("config", "core", "audit", "connector", "mappings", "commerce", "fusion", "sync")


def long_modules(limit: int) -> list[tuple[Path, int]]:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found.append((path.relative_to(ROOT), lines))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500)
    limit = parser.parse_args().limit
    found = long_modules(limit)
    for path, lines in found:
        print(f"{path}: {lines} lines (limit {limit}): split it by concern")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
