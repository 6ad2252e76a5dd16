"""manage.py sync_from_fusion, the schedules created with a connection, the task and the admin pages."""

from __future__ import annotations

import io
import json

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from connector.connections import connection_delete
from core.locks import single_run
from sync.flows.fusion_runs import last_checked, lock_key
from sync.models import FusionSyncSettings, SyncLink, SyncRun, SyncStream
from sync.tasks import fusion_sync
from tests.factories import make_connection
from tests.sync.fusion_fakes import FakeCommerce, FakeFusionMaster, item, site


@pytest.fixture(autouse=True)
def _clean(token_cache):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def systems():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fusion, commerce = FakeFusionMaster(rsps), FakeCommerce(rsps)
        fusion.items = [item(1, "2026-11-01T10:00:00+00:00"), item(2, "2026-11-02T10:00:00+00:00")]
        commerce.product("SKU-1")
        fusion.sites = [site("20002", 5003, "Purchase NY")]
        commerce.customer(1, "jdoe@example.com", erp_account_number="20002")
        yield fusion, commerce


@pytest.fixture
def connection(db):
    connection = make_connection(slug="acme-us")
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="M1")
    return connection


def _call(*args: str) -> str:
    out = io.StringIO()
    call_command("sync_from_fusion", *args, stdout=out)
    return out.getvalue()


def test_the_command_runs_every_stream_and_prints_the_counts(connection, systems):
    output = _call("acme-us")
    assert "acme-us customers: done: read 1, written 1 (created 0), unchanged 0, failed 0, unmatched 0" in output
    assert "acme-us items: done: read 2, written 1 (created 0), unchanged 0, failed 0, unmatched 1" in output
    assert "acme-us gl: done: read 0, written 0" in output
    # The GL run had no rule change to carry: it keeps no run row, only when it checked (in the cache).
    assert set(SyncRun.objects.values_list("stream", flat=True)) == {"customers", "items"}
    assert last_checked(connection.pk, "gl") is not None
    assert "\x1b[" not in output  # not a terminal: no progress display


def test_a_dry_run_of_one_stream_lists_what_would_change_and_writes_nothing(connection, systems):
    _, commerce = systems
    output = _call("acme-us", "--stream", "items", "--dry-run")
    assert "would update product SKU-1 (Fusion SKU-1): erp_item_number: '' -> 'SKU-1'" in output
    assert "no Commerce match for Fusion SKU-2 (SKU-2)" in output
    assert "acme-us items (dry run): done: read 2, written 1" in output
    assert commerce.writes == [] and not SyncLink.objects.exists() and not SyncRun.objects.exists()


def test_a_full_run_and_failures_are_reported(connection, systems):
    _, commerce = systems
    commerce.fail["PUT products/SKU-1"] = [400]
    output = _call("acme-us", "--stream", "items", "--full")
    assert "failed product SKU-1 (Fusion SKU-1): ValidationRejectedError" in output
    assert "acme-us items (full): done: read 2, written 0 (created 0), unchanged 0, failed 1" in output


def test_an_unknown_slug_and_a_stream_not_configured_fail_plainly(connection, systems):
    with pytest.raises(CommandError, match="No connection has the slug 'nope'"):
        _call("nope")
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="")
    with pytest.raises(CommandError, match="item master organisation"):
        _call("acme-us", "--stream", "items")


def test_a_run_already_going_on_is_not_started_twice(connection, systems):
    with single_run(lock_key(connection.pk, "customers"), seconds=60):
        with pytest.raises(CommandError, match="already going on"):
            _call("acme-us", "--stream", "customers")
        assert fusion_sync(connection.pk, "customers") == "already running"
    assert fusion_sync(connection.pk, "customers").startswith("read 1, written 1")


def test_a_connection_gets_a_paused_able_schedule_per_stream_and_loses_it_with_the_connection(connection):
    streams = SyncStream.objects.filter(connection=connection).select_related("task", "task__interval")
    tasks = {s.stream: s.task for s in streams}
    assert set(tasks) == {"customers", "items", "gl"}
    items = tasks["items"]
    assert (items.task, json.loads(items.args), items.queue) == ("sync.fusion_sync", [connection.pk, "items"], "sync")
    assert items.interval.every == 900 and items.enabled
    call_command("ensure_schedules", stdout=io.StringIO())
    assert PeriodicTask.objects.filter(task="sync.fusion_sync").count() == 3  # nothing doubled
    connection_delete(connection=connection, actor="test")
    assert not PeriodicTask.objects.filter(task="sync.fusion_sync").exists()


def test_ensure_schedules_adds_what_an_older_connection_lacks(connection):
    SyncStream.objects.filter(connection=connection).delete()
    out = io.StringIO()
    call_command("ensure_schedules", stdout=out)
    assert "Scheduled fusion sync items acme-us" in out.getvalue()
    assert SyncStream.objects.filter(connection=connection, task__isnull=False).count() == 3


def test_the_task_skips_a_disabled_connection_and_an_unconfigured_stream(connection):
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="")
    assert fusion_sync(connection.pk, "items").startswith("not configured: Set the item master organisation")
    connection.enabled = False
    connection.save()
    assert fusion_sync(connection.pk, "items") == "connection missing or disabled"


def test_the_admin_pages_show_streams_runs_links_and_settings(connection, systems, client):
    _call("acme-us")
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    for name in ("syncstream", "syncrun", "synclink", "fusionsyncsettings"):
        response = client.get(f"/admin/sync/{name}/")
        assert response.status_code == 200, name
    settings = FusionSyncSettings.objects.get(connection=connection)
    page = client.get(f"/admin/sync/fusionsyncsettings/{settings.pk}/change/")
    assert b"erp_item_number=ItemNumber; erp_item_status=ItemStatusValue" in page.content
    stream = SyncStream.objects.get(connection=connection, stream="items")
    client.post("/admin/sync/syncstream/", {"action": "pause", "_selected_action": [stream.pk]})
    stream.task.refresh_from_db()
    assert stream.task.enabled is False
