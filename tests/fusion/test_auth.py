import base64
import json
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import redis
import responses
from django.conf import settings
from django.core.cache import caches
from responses import matchers

from core.errors import AuthError, PermanentError, TransientError
from core.http import clock as http_clock
from fusion.client import FusionClient
from tests.factories import make_connection

BASE = "https://acme.fa.us2.oraclecloud.com"
INVOICES = f"{BASE}/fscmRestApi/resources/11.13.18.05/receivablesInvoices"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
SECRET = "fusion-client-secret-value"
REDIS_URL = settings.TEST_REDIS_URLS["cache"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("token_cache")]


def issue_tokens(*lifetimes):
    """Register one token answer per lifetime: eyJ-1, eyJ-2, ..."""
    return [
        responses.post(TOKEN_URL, json={"access_token": f"eyJ-{n}", "token_type": "Bearer", "expires_in": life})
        for n, life in enumerate(lifetimes, start=1)
    ]


def bearer(token):
    return [matchers.header_matcher({"Authorization": f"Bearer {token}"})]


def token_calls():
    return [c for c in responses.calls if c.request.url == TOKEN_URL]


def api_calls():
    return [c for c in responses.calls if c.request.url.startswith(INVOICES)]


# --- the token request --------------------------------------------------------------------------------------


@responses.activate
def test_token_request_is_client_credentials_with_basic_client_auth():
    connection = make_connection()
    responses.post(
        TOKEN_URL,
        json={"access_token": "eyJ-1", "expires_in": 3600},
        match=[
            matchers.header_matcher(
                {
                    "Authorization": "Basic " + base64.b64encode(f"fusion-client:{SECRET}".encode()).decode(),
                    "Content-Type": "application/x-www-form-urlencoded",
                }
            ),
            matchers.urlencoded_params_matcher({"grant_type": "client_credentials", "scope": connection.fusion_scope}),
        ],
    )
    responses.get(INVOICES, json={"items": []}, match=bearer("eyJ-1"))
    FusionClient.for_connection(connection).get("receivablesInvoices")
    assert len(token_calls()) == 1


@responses.activate
def test_one_token_call_serves_many_requests_across_client_instances():
    connection = make_connection()
    issue_tokens(3600, 3600)
    responses.get(INVOICES, json={"items": []}, match=bearer("eyJ-1"))
    for _ in range(3):
        client = FusionClient.for_connection(connection)
        for _ in range(4):
            client.get("receivablesInvoices")
    assert len(token_calls()) == 1
    assert len(api_calls()) == 12


@responses.activate
def test_token_is_refreshed_before_it_expires(clock):
    connection = make_connection()
    issue_tokens(3600, 3600)
    first = responses.get(INVOICES, json={"items": []}, match=bearer("eyJ-1"))
    second = responses.get(INVOICES, json={"items": []}, match=bearer("eyJ-2"))
    client = FusionClient.for_connection(connection)
    client.get("receivablesInvoices")
    clock["t"] += 3000  # ten minutes left: keep it
    client.get("receivablesInvoices")
    clock["t"] += 400  # three minutes left: refresh proactively, before Fusion would refuse it
    client.get("receivablesInvoices")
    assert (first.call_count, second.call_count) == (2, 1)
    assert len(token_calls()) == 2


@responses.activate
def test_a_401_causes_exactly_one_refresh_and_one_retry():
    connection = make_connection()
    issue_tokens(3600, 3600, 3600)
    stale = responses.get(INVOICES, status=401, body="", match=bearer("eyJ-1"))
    fresh = responses.get(INVOICES, json={"items": [1]}, match=bearer("eyJ-2"))
    assert FusionClient.for_connection(connection).get("receivablesInvoices") == {"items": [1]}
    assert (stale.call_count, fresh.call_count) == (1, 1)
    assert len(token_calls()) == 2
    # The new token is the shared one now: another client uses it without a token call.
    FusionClient.for_connection(connection).get("receivablesInvoices")
    assert len(token_calls()) == 2


@responses.activate
def test_a_second_401_surfaces_as_an_auth_error_in_plain_words():
    connection = make_connection()
    issue_tokens(3600, 3600, 3600)
    responses.get(INVOICES, status=401, body="")
    with pytest.raises(AuthError) as caught:
        FusionClient.for_connection(connection).get("receivablesInvoices")
    assert "refused the credentials" in caught.value.message
    assert "freshly fetched token was refused as well" in caught.value.message
    assert "scope" in caught.value.hint
    assert len(api_calls()) == 2
    assert len(token_calls()) == 2


@responses.activate
def test_a_401_on_a_post_is_retried_once_with_a_fresh_token():
    # A 401 means Fusion did not process the request, so resending the create cannot double it.
    connection = make_connection()
    issue_tokens(3600, 3600)
    responses.post(INVOICES, status=401, body="", match=bearer("eyJ-1"))
    created = responses.post(INVOICES, status=201, json={"CustomerTransactionId": 7}, match=bearer("eyJ-2"))
    assert FusionClient.for_connection(connection).post("receivablesInvoices", json={}) == {"CustomerTransactionId": 7}
    assert created.call_count == 1


@responses.activate
def test_a_changed_secret_fetches_a_new_token():
    connection = make_connection()
    issue_tokens(3600, 3600)
    responses.get(INVOICES, json={"items": []})
    FusionClient.for_connection(connection).get("receivablesInvoices")
    connection.fusion_client_secret = "rotated-secret-value"
    FusionClient.for_connection(connection).get("receivablesInvoices")
    assert len(token_calls()) == 2


# --- token endpoint errors -----------------------------------------------------------------------------------


@responses.activate
def test_invalid_client_says_the_client_id_or_secret_was_rejected_without_the_secret():
    responses.post(
        TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": f"Client authentication failed for {SECRET}"},
    )
    with pytest.raises(AuthError) as caught:
        FusionClient.for_connection(make_connection()).get("receivablesInvoices")
    assert caught.value.message.startswith("Fusion rejected the client id or secret")
    assert SECRET not in str(caught.value.as_dict())
    assert SECRET not in str(caught.value)
    assert api_calls() == []


@responses.activate
def test_invalid_scope_names_the_scope_problem():
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_scope", "error_description": "Invalid scope."})
    with pytest.raises(AuthError, match="refused the scope"):
        FusionClient.for_connection(make_connection()).get("receivablesInvoices")


@responses.activate
def test_a_throttled_token_endpoint_is_transient():
    responses.post(TOKEN_URL, status=429, headers={"Retry-After": "30"}, json={"error": "too_many_requests"})
    with pytest.raises(TransientError, match="throttling") as caught:
        FusionClient.for_connection(make_connection()).get("receivablesInvoices")
    assert caught.value.retry_after == 30


@responses.activate
def test_a_token_answer_without_access_token_is_permanent():
    responses.post(TOKEN_URL, json={"token_type": "Bearer"})
    with pytest.raises(PermanentError, match="without an access_token"):
        FusionClient.for_connection(make_connection()).get("receivablesInvoices")


@responses.activate
def test_ensure_token_fresh_fetches_even_with_a_cached_token():
    connection = make_connection()
    issue_tokens(3600, 3600)
    client = FusionClient.for_connection(connection)
    client.ensure_token()
    client.ensure_token()
    assert len(token_calls()) == 1
    client.ensure_token(fresh=True)
    assert len(token_calls()) == 2


def test_missing_credentials_are_reported_before_any_call():
    connection = make_connection()
    connection.fusion_client_secret = ""
    with pytest.raises(PermanentError, match="client id or secret is missing"):
        FusionClient.for_connection(connection)


# --- concurrency: threads and processes against a real token endpoint on loopback -----------------------------


class FusionStandIn:
    """A tiny Fusion + identity domain on 127.0.0.1 that counts token requests. Token answers are slowed down so
    concurrent callers really meet a fetch in progress."""

    def __init__(self, token_delay=0.3):
        self.token_delay = token_delay
        self.lock = threading.Lock()
        self.token_hits = 0
        self.api_hits = 0
        self.valid = set()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                assert form["grant_type"] == ["client_credentials"]
                with stand_in.lock:
                    stand_in.token_hits += 1
                    token = f"tok-{stand_in.token_hits}"
                    stand_in.valid = {token}
                time.sleep(stand_in.token_delay)
                self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

            def do_GET(self):
                token = self.headers.get("Authorization", "")[7:]
                with stand_in.lock:
                    stand_in.api_hits += 1
                    ok = token in stand_in.valid
                self._answer(200, {"items": [], "hasMore": False}) if ok else self._answer(401, {})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def local_connection(stand_in):
    return make_connection(fusion_base_url=stand_in.base, fusion_token_url=f"{stand_in.base}/oauth2/v1/token")


def expire_shared_token(client):
    store = client.auth.store
    entry = store.cache.get(store.key)
    entry["refresh_at"] = entry["expires_at"] = 0
    store.cache.set(store.key, entry)


def test_twenty_threads_meeting_an_expired_token_make_one_token_request(allow_local_endpoints, monkeypatch):
    monkeypatch.setattr(http_clock, "sleep", time.sleep)
    with FusionStandIn() as stand_in:
        connection = local_connection(stand_in)
        first = FusionClient.for_connection(connection)
        first.get("receivablesInvoices")
        expire_shared_token(first)
        start = threading.Barrier(20)

        def worker(_):
            client = FusionClient.for_connection(connection)
            start.wait()
            return client.get("receivablesInvoices")

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(worker, range(20), timeout=120))
    assert results == [{"items": [], "hasMore": False}] * 20
    assert stand_in.token_hits == 2  # the first token, then exactly one refresh for all twenty
    assert stand_in.api_hits == 21


def _redis_reachable():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def _process_worker(connection, start, results):
    try:
        start.wait(60)
        results.put(("ok", FusionClient.for_connection(connection).get("receivablesInvoices")))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", repr(exc)))


@pytest.mark.skipif(not _redis_reachable(), reason=f"needs Redis at {REDIS_URL}")
def test_processes_sharing_redis_meeting_an_expired_token_make_one_token_request(
    allow_local_endpoints, settings, monkeypatch
):
    monkeypatch.setattr(http_clock, "sleep", time.sleep)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        }
    }
    assert "Redis" in type(caches["default"]).__name__
    workers = 8
    ctx = multiprocessing.get_context("fork")
    with FusionStandIn() as stand_in:
        connection = local_connection(stand_in)
        first = FusionClient.for_connection(connection)
        first.get("receivablesInvoices")
        expire_shared_token(first)
        start = ctx.Barrier(workers)
        results = ctx.Queue()
        processes = [ctx.Process(target=_process_worker, args=(connection, start, results)) for _ in range(workers)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        caches["default"].delete(first.auth.store.key)
    assert outcomes == [("ok", {"items": [], "hasMore": False})] * workers
    assert [p.exitcode for p in processes] == [0] * workers
    assert stand_in.token_hits == 2
    assert stand_in.api_hits == workers + 1


def test_repr_of_the_auth_never_shows_the_secret():
    client = FusionClient.for_connection(make_connection())
    assert SECRET not in repr(client.auth)
    assert SECRET not in repr(client.auth.store)
