"""The Fusion beat tasks hand each enabled connection its own task."""

from unittest import mock

import pytest

from sync import tasks
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


def test_beat_task_fans_out_one_reference_refresh_per_enabled_connection():
    first, second = make_connection(), make_connection()
    make_connection(enabled=False)
    with mock.patch.object(tasks.refresh_reference, "apply_async") as send:
        assert tasks.refresh_reference_all() == 2
    send.assert_has_calls(
        [mock.call(args=[first.pk], retry=False), mock.call(args=[second.pk], retry=False)], any_order=True
    )
    assert send.call_count == 2
