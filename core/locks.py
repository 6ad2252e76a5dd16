"""One run at a time across every process: a lock in the shared cache (Redis in production) that expires on its
own, so a killed holder only delays the next run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def single_run(key: str, *, seconds: int) -> Iterator[bool]:
    """Yields True when this caller holds the lock (and frees it afterwards), False when another run holds it."""
    if not cache.add(key, "1", seconds):
        yield False
        return
    try:
        yield True
    finally:
        cache.delete(key)
