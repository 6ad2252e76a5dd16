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
