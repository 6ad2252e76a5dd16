"""The sync from Fusion against the bundled mock Fusion and mock Commerce (in threads, seed data): what the
vendors' documented calls do end to end, small enough for every test run."""

from __future__ import annotations

import pytest
import requests
from django.core.cache import cache

from mappings.models import CustomerRule
from sync.flows.fusion_runs import fusion_sync_run
from sync.models import FusionSyncSettings, SyncLink, SyncRun
from tests import mockservers

fusion_mock = mockservers.fusion_mock
commerce_mock = mockservers.commerce_mock


@pytest.fixture
def connection(db, allow_local_endpoints, token_cache, fusion_mock, commerce_mock):
    connection = mockservers.mock_connection(fusion_mock, commerce_mock)
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="M1")
    cache.clear()
    return connection


def _attrs(entity):
    return {a["attribute_code"]: a["value"] for a in entity.get("custom_attributes", [])}


def test_items_and_customers_reach_commerce_and_a_second_run_writes_nothing(connection, fusion_mock, commerce_mock):
    items = fusion_sync_run(connection=connection, stream="items")
    customers = fusion_sync_run(connection=connection, stream="customers")
    assert items.counts.read == 7 and items.counts.unmatched == 3, items.counts
    assert items.counts.written == 4 and items.counts.failed == 0, items.counts
    laptop = commerce_mock.products["SKU-LAPTOP-15"]
    assert _attrs(laptop)["erp_item_number"] == "SKU-LAPTOP-15" and _attrs(laptop)["erp_item_status"] == "Active"
    assert {w["scope"] for w in commerce_mock.product_writes} == {"all"}
    assert customers.counts.written == 2, customers.counts  # Jane Doe (20002) and Chris (1008)
    assert _attrs(commerce_mock.customers[1])["erp_bill_to_site"] == "Purchase NY"
    assert CustomerRule.objects.filter(connection=connection, synced_from_fusion=True).count() == 2
    assert SyncRun.objects.filter(connection=connection, status=SyncRun.Status.DONE).count() == 2

    before = requests.get(f"{commerce_mock.url}/__mock__/state", timeout=5).json()
    again_items = fusion_sync_run(connection=connection, stream="items")
    again_customers = fusion_sync_run(connection=connection, stream="customers")
    after = requests.get(f"{commerce_mock.url}/__mock__/state", timeout=5).json()
    assert after["requests"] == before["requests"]  # no Commerce call at all
    assert again_items.counts.written == again_customers.counts.written == 0
    assert again_items.counts.fusion_requests == 1 and again_customers.counts.fusion_requests == 1
    assert SyncLink.objects.filter(connection=connection, state=SyncLink.State.FAILED).count() == 0
