import os
import subprocess
import threading
import time

import pytest
from django.core.cache import cache

from core.errors import TransientError
from fusion import throttle
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


class FakeClient:
    def __init__(self, error=None, hold=0.05):
        self.error = error
        self.hold = hold
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def get(self, resource, params=None):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.hold)
        with self.lock:
            self.running -= 1
        if self.error:
            raise self.error
        return {"items": []}


def test_concurrent_calls_never_exceed_the_connection_ceiling():
    connection = make_connection(fusion_max_concurrency=2, fusion_max_rps=1000)
    fake = FakeClient(hold=0.2)
    paced = throttle.PacedClient(fake, connection)
    start = threading.Barrier(8)
    answers, errors = [], []

    def call():
        start.wait(10)
        try:
            answers.append(paced.get("x"))
        except BaseException as exc:  # an error in a thread must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert answers == [{"items": []}] * 8  # every call went through, in turn
    assert fake.peak == 2  # two at a time, never more


def test_a_429_halves_the_ceiling_until_it_expires():
    connection = make_connection(fusion_max_concurrency=8, fusion_max_rps=10)
    paced = throttle.PacedClient(FakeClient(TransientError("slow down", status=429)), connection)
    with pytest.raises(TransientError):
        paced.get("x")
    assert throttle.limits(connection) == (4, 5.0)
    with pytest.raises(TransientError):
        paced.get("x")
    assert throttle.limits(connection) == (2, 2.5)
    cache.delete(throttle._factor_key(connection.pk))  # the back-off window ran out
    assert throttle.limits(connection) == (8, 10.0)


def test_other_errors_do_not_lower_the_ceiling():
    connection = make_connection(fusion_max_concurrency=8, fusion_max_rps=10)
    paced = throttle.PacedClient(FakeClient(TransientError("bad gateway", status=502)), connection)
    with pytest.raises(TransientError):
        paced.get("x")
    assert throttle.limits(connection) == (8, 10.0)


def test_a_full_ceiling_reschedules_instead_of_blocking_forever(monkeypatch):
    connection = make_connection(fusion_max_concurrency=1)
    monkeypatch.setattr(throttle, "MAX_WAIT", 0.2)
    with (
        throttle.fusion_slot(connection),
        pytest.raises(TransientError, match="already running"),
        throttle.fusion_slot(connection),
    ):
        pass


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_slot_held_by_a_killed_process_of_this_machine_is_taken_back_at_once(monkeypatch):
    """A worker SIGKILLed in the middle of a Fusion call never releases its slot; the next caller takes it back
    instead of waiting out SLOT_TTL with the connection's postings stalled."""
    connection = make_connection(fusion_max_concurrency=1)
    monkeypatch.setattr(throttle, "MAX_WAIT", 0.2)
    key = f"fusion-pace:{connection.pk}:slot:0"
    cache.set(key, f"{throttle.HOST} {_dead_pid()} killed-mid-call", throttle.SLOT_TTL)

    with throttle.fusion_slot(connection):
        assert cache.get(key).startswith(f"{throttle.HOST} {os.getpid()} ")
    assert cache.get(key) is None


@pytest.mark.parametrize("holder", ["alive", "other-host", "legacy"])
def test_a_slot_whose_holder_may_still_run_is_not_taken(monkeypatch, holder):
    connection = make_connection(fusion_max_concurrency=1)
    monkeypatch.setattr(throttle, "MAX_WAIT", 0.2)
    value = {
        "alive": f"{throttle.HOST} {os.getppid()} busy",
        "other-host": f"{throttle.HOST}-elsewhere {_dead_pid()} busy",
        "legacy": "0123456789abcdef",
    }[holder]
    key = f"fusion-pace:{connection.pk}:slot:0"
    cache.set(key, value, throttle.SLOT_TTL)

    with pytest.raises(TransientError, match="already running"), throttle.fusion_slot(connection):
        pass
    assert cache.get(key) == value
