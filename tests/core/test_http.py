import email.utils
import itertools
import random
import socket
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
from django.core.cache.backends.locmem import LocMemCache
from urllib3.exceptions import MaxRetryError, NameResolutionError

from core.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
    ValidationRejectedError,
)
from core.http import clock as http_clock
from core.http import tokens
from core.http.answers import parse_retry_after, status_error
from core.http.tokens import TokenGrant, TokenStore
from core.http.transport import MAX_EXCHANGES, Transport, new_session

URL = "https://api.example.test/items"
SECRET = "s3cr3t-client-value"


@pytest.fixture
def sleeps(monkeypatch):
    """Record the waits instead of waiting."""
    waited: list[float] = []
    monkeypatch.setattr(http_clock, "sleep", waited.append)
    return waited


@pytest.fixture
def clock(monkeypatch):
    """A wall clock the test moves by hand."""
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(http_clock, "now", lambda: now["t"])
    return now


def transport(**kwargs):
    return Transport(
        system="Example",
        session=new_session(),
        error_for=partial(status_error, system="Example", detail=""),
        secrets=[SECRET],
        timeout=(1.0, 2.0),
        **kwargs,
    )


def fresh_cache():
    return LocMemCache(f"tokens-{uuid.uuid4()}", {})


# --- Retry-After ------------------------------------------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates(clock):
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    in_90s = email.utils.formatdate(clock["t"] + 90, usegmt=True)
    assert parse_retry_after(in_90s) == pytest.approx(90, abs=1)
    assert parse_retry_after(email.utils.formatdate(clock["t"] - 90, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


# --- safe reads are retried, writes never ---------------------------------------------------------------


@responses.activate
def test_read_retries_honour_retry_after_then_succeed(sleeps):
    responses.get(URL, status=429, headers={"Retry-After": "2"})
    responses.get(URL, status=503)
    responses.get(URL, json={"ok": True})
    answer = transport().request("GET", URL)
    assert answer.json() == {"ok": True}
    assert len(responses.calls) == 3
    assert sleeps[0] == 2.0
    assert 0 <= sleeps[1] <= 1.0  # backoff with full jitter when no Retry-After is given


@responses.activate
def test_read_retry_waits_grow_with_full_jitter_up_to_the_inline_cap(sleeps, monkeypatch):
    # Documented: full jitter, BACKOFF_BASE doubled per retry, capped at max_sleep. With seven tries the six
    # waits are drawn from [0, 0.5], [0, 1], [0, 2], [0, 4], [0, 8] and [0, 10] (16 without the cap).
    monkeypatch.setattr("core.http.transport.random", random.Random(20261202))  # many draws, repeatable
    tries, reads = 7, 150
    sent = []

    def busy_until_the_last_try(request):
        sent.append(request)
        return (200, {}, "{}") if len(sent) % tries == 0 else (503, {}, "")

    responses.add_callback(responses.GET, URL, callback=busy_until_the_last_try)
    client = transport(max_tries=tries, max_sleep=10.0)
    for _ in range(reads):
        client.request("GET", URL)
    assert len(sent) == tries * reads and len(sleeps) == (tries - 1) * reads
    waits = [sleeps[retry :: tries - 1] for retry in range(tries - 1)]  # the waits before each retry
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    means = []
    for drawn, ceiling in zip(waits, ceilings, strict=True):
        assert all(0 <= w <= ceiling for w in drawn), (ceiling, max(drawn))
        assert min(drawn) < 0.2 * ceiling and max(drawn) > 0.8 * ceiling  # jittered over the whole range
        assert statistics.pstdev(drawn) > 0.2 * ceiling
        means.append(statistics.fmean(drawn))
        assert means[-1] == pytest.approx(ceiling / 2, rel=0.25)
    for earlier, later in itertools.pairwise(means[:5]):
        assert later > 1.4 * earlier  # the waits really grow


@responses.activate
def test_every_read_retry_waits_what_retry_after_asks(sleeps):
    for seconds in ("1", "3", "2.5"):
        responses.get(URL, status=429, headers={"Retry-After": seconds})
    responses.get(URL, json={"ok": True})
    assert transport(max_tries=4).request("GET", URL).json() == {"ok": True}
    assert sleeps == [1.0, 3.0, 2.5]


@responses.activate
def test_read_gives_up_after_three_tries_with_a_transient_error(sleeps):
    for _ in range(4):
        responses.get(URL, status=503)
    with pytest.raises(TransientError, match="unavailable"):
        transport().request("GET", URL)
    assert len(responses.calls) == 3
    assert len(sleeps) == 2


@responses.activate
def test_long_retry_after_is_handed_back_to_the_pipeline_not_slept(sleeps):
    responses.get(URL, status=429, headers={"Retry-After": "120"})
    responses.get(URL, json={})
    with pytest.raises(TransientError) as caught:
        transport().request("GET", URL)
    assert caught.value.retry_after == 120.0
    assert caught.value.status == 429
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_post_that_times_out_is_not_retried_and_its_outcome_is_unknown(sleeps):
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.post(URL, json={"created": True})
    with pytest.raises(OutcomeUnknownError, match="may or may not"):
        transport().request("POST", URL, json={"a": 1})
    assert len(responses.calls) == 1
    assert sleeps == []


@responses.activate
def test_patch_whose_connection_drops_has_an_unknown_outcome():
    responses.patch(URL, body=requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected"))
    with pytest.raises(OutcomeUnknownError):
        transport().request("PATCH", URL, json={"InvoiceStatus": "Complete"})
    assert len(responses.calls) == 1


@responses.activate
def test_post_answered_503_is_transient_but_not_retried(sleeps):
    responses.post(URL, status=503)
    responses.post(URL, json={})
    with pytest.raises(TransientError) as caught:
        transport().request("POST", URL, json={})
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(responses.calls) == 1


@responses.activate
def test_read_timeout_on_a_get_is_retried(sleeps):
    responses.get(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(URL, json={"ok": 1})
    assert transport().request("GET", URL).json() == {"ok": 1}
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ValidationRejectedError),
        (409, ValidationRejectedError),
        (412, ValidationRejectedError),
        (422, ValidationRejectedError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (405, PermanentError),
    ],
)
def test_client_errors_are_permanent_and_never_retried(status, error, sleeps):
    responses.get(URL, status=status, body="nope")
    with pytest.raises(error):
        transport().request("GET", URL)
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed():
    responses.get(URL, status=302, headers={"Location": "https://elsewhere.example/steal?token=abc"})
    with pytest.raises(PermanentError, match="redirect") as caught:
        transport().request("GET", URL)
    assert "abc" not in str(caught.value)
    assert len(responses.calls) == 1


# --- failures to connect at all -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_transient_host_unreachable_even_for_a_post(sleeps, allow_local_endpoints):
    url = f"http://127.0.0.1:{_closed_port()}/token"
    with pytest.raises(TransientError, match="host unreachable") as caught:
        transport().request("POST", url, data={"a": "b"})
    assert not isinstance(caught.value, OutcomeUnknownError)  # nothing was sent


@responses.activate
def test_dns_failure_is_transient_host_unreachable(sleeps):
    reason = NameResolutionError("nowhere.example", None, socket.gaierror(-2, "Name or service not known"))
    responses.get(URL, body=requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason)))
    with pytest.raises(TransientError, match="host unreachable.*DNS"):
        transport(max_tries=1).request("GET", URL)


class _PlainHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_tls_failure_is_permanent_and_says_tls(allow_local_endpoints):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/x"  # TLS to a plain-HTTP port
        with pytest.raises(PermanentError, match="TLS"):
            transport().request("GET", url)
    finally:
        server.shutdown()
        server.server_close()


# --- audit excerpts and secrets ---------------------------------------------------------------------------


@responses.activate
def test_exchanges_are_redacted_excerpts_of_every_attempt(sleeps):
    responses.get(URL, status=503, body="busy")
    responses.get(URL, json={"access_token": "eyJ-issued-token", "echo": SECRET})
    t = transport()
    t.request("GET", URL, headers={"Authorization": "Bearer eyJ-sent-token"}, params={"limit": 1})
    assert [e["status"] for e in t.exchanges] == [503, 200]
    assert [e["attempt"] for e in t.exchanges] == [1, 2]
    text = str(t.exchanges)
    assert "eyJ-sent-token" not in text
    assert "eyJ-issued-token" not in text
    assert SECRET not in text
    assert t.exchanges[0]["url"] == URL + "?limit=1"
    assert t.exchanges[0]["method"] == "GET"


@responses.activate
def test_errors_never_carry_a_secret_the_system_echoed():
    responses.post(URL, status=400, body=f"bad request: client_secret {SECRET} is not valid")
    with pytest.raises(ValidationRejectedError) as caught:
        transport().request("POST", URL, data={"client_secret": SECRET})
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in error.body
    assert SECRET not in str(error.as_dict())


@responses.activate
def test_exchange_list_is_bounded():
    responses.get(URL, json={})
    t = transport()
    for _ in range(MAX_EXCHANGES + 5):
        t.request("GET", URL)
    assert len(t.exchanges) == MAX_EXCHANGES


# --- the token store -----------------------------------------------------------------------------------------


def counting_fetch(lifetime=3600.0, *, delay=None):
    calls = []

    def fetch():
        calls.append(1)
        if delay is not None:
            delay.wait(30)
        return TokenGrant(access_token=f"token-{len(calls)}", expires_in=lifetime)

    return fetch, calls


def test_one_fetch_serves_many_callers_and_store_instances(clock):
    cache = fresh_cache()
    fetch, calls = counting_fetch()
    stores = [TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache) for _ in range(3)]
    assert {store.get() for store in stores for _ in range(5)} == {"token-1"}
    assert len(calls) == 1


def test_token_is_refreshed_shortly_before_it_expires(clock):
    cache = fresh_cache()
    fetch, calls = counting_fetch(lifetime=3600)
    store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache)
    assert store.get() == "token-1"
    clock["t"] += 3600 - 301  # more than five minutes left
    assert store.get() == "token-1"
    clock["t"] += 2  # inside the last five minutes, not yet expired
    assert store.get() == "token-2"
    assert len(calls) == 2


def test_short_lived_token_is_refreshed_at_ninety_percent(clock):
    fetch, calls = counting_fetch(lifetime=60)
    store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=fresh_cache())
    store.get()
    clock["t"] += 53
    assert store.get() == "token-1"
    clock["t"] += 2
    assert store.get() == "token-2"


def test_a_changed_credential_uses_another_cache_entry(clock):
    cache = fresh_cache()
    fetch, calls = counting_fetch()
    old = TokenStore(
        name="X", owner=1, fingerprint=tokens.credential_fingerprint("url", "id", "old"), fetch=fetch, cache=cache
    )
    new = TokenStore(
        name="X", owner=1, fingerprint=tokens.credential_fingerprint("url", "id", "new"), fetch=fetch, cache=cache
    )
    assert old.get() == "token-1"
    assert new.get() == "token-2"
    assert "old" not in new.key and "new" not in new.key


def test_invalidate_drops_only_the_token_that_was_refused(clock):
    fetch, calls = counting_fetch()
    store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=fresh_cache())
    store.get()
    store.invalidate("some-older-token")
    assert store.get() == "token-1"
    store.invalidate("token-1")
    assert store.get() == "token-2"


def test_twenty_threads_meeting_an_expired_token_make_one_token_request(monkeypatch):
    cache = fresh_cache()
    release = threading.Event()
    fetch, calls = counting_fetch(delay=release)
    waiting: set[int] = set()
    lock = threading.Lock()

    def poll(seconds):
        # The fetch is held until all 19 losers are seen polling, so they really meet the fetch in progress.
        with lock:
            waiting.add(threading.get_ident())
            if len(waiting) >= 19:
                release.set()
        time.sleep(0.005)

    monkeypatch.setattr(http_clock, "sleep", poll)
    start = threading.Barrier(20)

    def worker(_):
        store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache)
        start.wait()
        return store.get()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(worker, range(20), timeout=60))
    assert results == ["token-1"] * 20
    assert len(calls) == 1
    assert len(waiting) == 19


def test_while_one_worker_refreshes_the_others_keep_the_still_valid_token(clock):
    cache = fresh_cache()
    fetch, calls = counting_fetch()
    store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache)
    store.get()
    clock["t"] += 3500  # in the refresh window, still valid
    cache.add(store.lock_key, "another-worker", timeout=30)
    assert store.get() == "token-1"
    assert len(calls) == 1


def test_waiting_for_another_workers_fetch_is_bounded(clock, monkeypatch):
    cache = fresh_cache()
    fetch, calls = counting_fetch()
    store = TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache, wait_seconds=3)
    cache.add(store.lock_key, "a-worker-that-hangs", timeout=60)

    def tick(seconds):
        clock["t"] += 1

    monkeypatch.setattr(http_clock, "sleep", tick)
    with pytest.raises(TransientError, match="Waited 3 s"):
        store.get()
    assert calls == []


def test_a_refused_token_request_is_remembered_briefly_so_workers_do_not_repeat_it(clock):
    cache = fresh_cache()
    calls = []

    def fetch():
        calls.append(1)
        raise AuthError("Fusion rejected the client id or secret", status=401)

    stores = [TokenStore(name="X", owner=1, fingerprint="f", fetch=fetch, cache=cache) for _ in range(5)]
    for store in stores:
        with pytest.raises(AuthError, match="rejected the client id"):
            store.get()
    assert len(calls) == 1
    with pytest.raises(AuthError):
        stores[0].get(fresh=True)  # "Test connection" asks again
    assert len(calls) == 2


def test_token_grant_repr_hides_the_token():
    assert "abc123" not in repr(TokenGrant(access_token="abc123", expires_in=10))


# --- what a session takes from the environment --------------------------------------------------------------


class _EchoAuthHandler(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self):
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_session_ignores_proxy_variables_and_netrc_from_the_environment(monkeypatch, tmp_path, allow_local_endpoints):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _EchoAuthHandler.seen = []
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password-leaked\n")
    netrc.chmod(0o600)
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.setenv("NETRC", str(netrc))
    try:
        response = transport(max_tries=1).request("GET", f"http://127.0.0.1:{server.server_address[1]}/x")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 204  # straight to the server, not through the (dead) proxy
    assert _EchoAuthHandler.seen == [None]  # and without the .netrc credentials


@responses.activate
def test_the_configured_proxy_is_the_only_one_used(settings, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.example:3128")
    settings.CONNECTOR_HTTPS_PROXY = "http://proxy.internal:3128"
    responses.get(URL, json={})
    transport().request("GET", URL)
    assert responses.calls[0].request.req_kwargs["proxies"] == {"https": "http://proxy.internal:3128"}
    settings.CONNECTOR_HTTPS_PROXY = ""
    transport().request("GET", URL)
    assert not responses.calls[1].request.req_kwargs["proxies"]
