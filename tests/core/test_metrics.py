"""What core/metrics.py counts and how: low-cardinality names for what a URL addresses, the outcome of every
HTTP attempt the shared transport makes, the class of a retry, and the files of several processes."""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import requests
import responses
from celery.exceptions import SoftTimeLimitExceeded

from core import metrics
from core.errors import OutcomeUnknownError, PermanentError, TransientError
from core.http import clock as http_clock
from core.http.answers import status_error
from core.http.transport import Transport, new_session
from tests.metrics_support import metrics_dir  # noqa: F401  (fixture)

FUSION = "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "resource"),
    [
        (f"{FUSION}/receivablesInvoices?q=TransactionNumber%3DMAG-1", "receivablesInvoices"),
        (f"{FUSION}/receivablesInvoices/300100000/child/receivablesInvoiceLines", "receivablesInvoices"),
        ("https://acme.fa.us2.oraclecloud.com/crmRestApi/resources/11.13.18.05/accounts/1008", "accounts"),
        ("https://shop.example.com/rest/default/V1/orders/000000042", "orders"),
        ("https://na1.api.commerce.adobe.com/TENANT/V1/products/SKU-123", "products"),
        ("https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token", "token"),
        (f"{FUSION}/300100000", "other"),  # an id where the resource name belongs is never a label
        ("https://shop.example.com/rest/default/V1", "other"),
        ("https://shop.example.com/somewhere/else", "other"),
    ],
)
def test_resource_is_a_name_never_an_id(url, resource):
    assert metrics.resource_of(url) == resource


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OutcomeUnknownError("timed out after sending"), "outcome_unknown"),
        (TransientError("busy", status=429), "rate_limited"),
        (TransientError("down", status=503), "server_error"),
        (TransientError("host unreachable"), "unreachable"),
        (SoftTimeLimitExceeded(), "time_limit"),
        (KeyError("odd answer"), "unexpected"),
    ],
)
def test_retry_reason_classes(error, reason):
    assert metrics.retry_reason(error) == reason


def _transport():
    return Transport(
        system="Fusion",
        session=new_session(),
        error_for=partial(status_error, system="Fusion", detail=""),
        timeout=(1.0, 2.0),
    )


def _http(system="Fusion", method="GET", resource="receivablesInvoices", outcome="2xx"):
    return metrics.HTTP_REQUESTS.labels(system, method, resource, outcome)._value.get()


@responses.activate
def test_transport_counts_every_attempt_by_status_class_and_error_kind(metrics_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr(http_clock, "sleep", lambda seconds: None)
    responses.get(f"{FUSION}/receivablesInvoices/1", status=503)
    responses.get(f"{FUSION}/receivablesInvoices/1", json={"ok": True})
    responses.post(f"{FUSION}/receivablesInvoices", status=400, json={"title": "Bad Request"})
    responses.post(f"{FUSION}/receivablesCreditMemos", body=requests.exceptions.ReadTimeout("read timed out"))
    transport = _transport()
    transport.request("GET", f"{FUSION}/receivablesInvoices/1?onlyData=true")
    with pytest.raises(PermanentError):
        transport.request("POST", f"{FUSION}/receivablesInvoices", json={})
    with pytest.raises(OutcomeUnknownError):
        transport.request("POST", f"{FUSION}/receivablesCreditMemos", json={})
    assert _http(outcome="5xx") == 1 and _http(outcome="2xx") == 1  # the retried read: both attempts
    assert _http(method="POST", outcome="4xx") == 1
    assert _http(method="POST", resource="receivablesCreditMemos", outcome="read_timeout") == 1


WRITER = """
import sys
from core import metrics
metrics.HTTP_REQUESTS.labels("Fusion", "GET", "receivablesInvoices", "2xx").inc(int(sys.argv[1]))
"""


def test_values_of_several_processes_are_all_found_for_the_sum(metrics_dir):  # noqa: F811
    metrics.HTTP_REQUESTS.labels("Fusion", "GET", "receivablesInvoices", "2xx").inc(2)
    worker = metrics_dir / "worker"
    worker.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(worker), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WRITER, "5"], env=env, check=True, cwd=ROOT, timeout=120)
    files = metrics.multiprocess_files(metrics_dir)
    assert len(files) == 2 and any("/worker/" in f for f in files) and any("/web/" in f for f in files)
