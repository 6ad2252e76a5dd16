"""Prometheus values isolated per test: multiprocess mode writing into the test's own directory, so no test sees
another's counts (nor those of the process's earlier tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from core import metrics

COUNTED = (metrics.WEBHOOK_DELIVERIES, metrics.POSTING_LATENCY, metrics.RECORD_RETRIES, metrics.HTTP_REQUESTS)


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch, settings) -> Path:
    """The metrics root of this test; this process writes as the `web` group under it."""
    root = tmp_path / "metrics"
    own = root / "web"
    own.mkdir(parents=True)
    settings.CONNECTOR_METRICS_DIR = str(root)
    _forget_label_sets()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(own))
    # A fresh value class: the files it opens are this test's, not those an earlier test left open.
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    yield root
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    _forget_label_sets()


def _forget_label_sets() -> None:
    """Children made so far hold values of another directory (or of memory): make them anew."""
    for metric in COUNTED:
        metric.clear()


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by Prometheus's own parser: {(name, sorted labels): value}."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, tuple(sorted(labels.items()))))
