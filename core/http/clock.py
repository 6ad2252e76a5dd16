"""The clocks the HTTP layer reads, in one place so tests can move them by hand."""

from __future__ import annotations

import time


def now() -> float:
    """Wall-clock seconds. Token expiry is shared between processes, so it cannot be a monotonic clock."""
    return time.time()


def sleep(seconds: float) -> None:
    time.sleep(seconds)
