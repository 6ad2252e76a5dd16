"""The items stream of the sync from Fusion against Fusion's and Commerce's HTTP contracts (responses)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import responses
from django.core.cache import cache

from audit.models import AuditEvent
from mappings.models import ProductRule
from mappings.services import rule_save
from sync.flows import fusion_runs
from sync.flows.fusion_items import ProductSide
from sync.flows.fusion_runs import fusion_sync_run
from sync.models import FusionSyncSettings, SyncLink, SyncRun, SyncStream
from tests.factories import make_connection
from tests.sync.fusion_fakes import FakeCommerce, FakeFusionMaster, attributes_of, item

T0 = "2026-11-01T10:00:00+00:00"
T1 = "2026-11-02T10:00:00+00:00"
T2 = "2026-11-03T10:00:00+00:00"


@pytest.fixture(autouse=True)
def _clean(token_cache):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def systems():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFusionMaster(rsps), FakeCommerce(rsps)


@pytest.fixture
def connection(db):
    connection = make_connection()
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="M1")
    return connection


def _run(connection, **kwargs):
    return fusion_sync_run(connection=connection, stream="items", **kwargs)


def _watermark(connection):
    return SyncStream.objects.get(connection=connection, stream="items").watermark


def _three(fusion, commerce):
    fusion.items = [item(1, T0), item(2, T1), item(3, T2)]
    for n in (1, 2, 3):
        commerce.product(f"SKU-{n}", tax_class_id="2")


def test_first_run_writes_the_mapped_attributes_globally_and_links_each_item(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    run = _run(connection)
    assert (run.counts.read, run.counts.written, run.counts.failed) == (3, 3, 0)
    puts = commerce.writes_to("PUT", "products/")
    assert sorted(path for path, _ in puts) == ["products/SKU-1", "products/SKU-2", "products/SKU-3"]
    assert all(method == "PUT" for method, _ in commerce.calls if method != "GET")
    assert {c for m, c in commerce.calls if m == "GET"} == {"products"}  # one search, no GET per product
    assert attributes_of(commerce.products["SKU-2"]) == {
        "tax_class_id": "2",  # kept: only the sync's attributes are sent
        "erp_item_number": "SKU-2",
        "erp_item_status": "Active",  # no product rule: no GL value, and an absent attribute is not written ""
    }
    assert _watermark(connection) == datetime.fromisoformat(T2)
    assert SyncLink.objects.filter(connection=connection, state=SyncLink.State.LINKED).count() == 3
    row = SyncRun.objects.get(connection=connection)
    assert (row.status, row.read, row.written, row.unchanged) == (SyncRun.Status.DONE, 3, 3, 0)
    audited = AuditEvent.objects.filter(action="fusion_sync.product_updated", target_id="SKU-2").get()
    assert audited.data["before"]["erp_item_status"] == "" and audited.data["after"]["erp_item_status"] == "Active"


def test_an_incremental_run_reads_from_the_watermark_less_the_overlap_and_writes_only_the_change(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    fusion.items[0] = item(1, "2026-11-04T09:00:00+00:00", status="Inactive")
    commerce.writes.clear()
    fusion.requests.clear()
    run = _run(connection)
    (query,) = fusion.requests
    assert query["q"] == "OrganizationCode = 'M1' and LastUpdateDateTime >= '2026-11-03T09:55:00+00:00'"
    assert query["orderBy"] == "LastUpdateDateTime,ItemId"
    assert [(path, body["product"]["custom_attributes"]) for path, body in commerce.writes_to("PUT", "products/")] == [
        ("products/SKU-1", [{"attribute_code": "erp_item_status", "value": "Inactive"}])
    ]
    assert (run.counts.read, run.counts.written, run.counts.unchanged, run.counts.inactive) == (2, 1, 1, 1)
    assert SyncLink.objects.get(connection=connection, fusion_key="300100001").state == SyncLink.State.INACTIVE
    assert "SKU-1" in commerce.products  # reported, never disabled or deleted


def test_the_overlap_reads_again_but_does_not_write_twice(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    commerce.writes.clear()
    run = _run(connection)  # SKU-3 (at the watermark) is inside the overlap
    assert run.counts.read == 1 and run.counts.unchanged == 1
    assert commerce.writes == [] and commerce.calls[-1][0] == "PUT"  # no new call at all


def test_an_idle_run_makes_one_fusion_request_and_no_commerce_request(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    calls = len(commerce.calls)
    fusion.requests.clear()
    run = _run(connection)
    assert len(fusion.requests) == 1 and len(commerce.calls) == calls
    assert (run.counts.fusion_requests, run.counts.commerce_requests) == (1, 0)


def test_pages_are_read_by_key_across_several_pages_and_equal_timestamps(connection, systems):
    fusion, commerce = systems
    fusion.page_size = 2
    fusion.items = [item(n, T0 if n <= 3 else T1) for n in range(1, 6)]
    for n in range(1, 6):
        commerce.product(f"SKU-{n}")
    run = _run(connection)
    assert run.counts.read == 5 and run.counts.written == 5
    assert all(r.get("offset", "0") == "0" for r in fusion.requests)  # never by offset
    qs = [r["q"] for r in fusion.requests]
    assert qs[0].endswith("OrganizationCode = 'M1'")
    assert "LastUpdateDateTime = '2026-11-01T10:00:00+00:00' and ItemId > '300100002'" in qs[1]
    assert qs[2].endswith("LastUpdateDateTime > '2026-11-01T10:00:00+00:00'")
    assert sorted(p for p, _ in commerce.writes_to("PUT", "products/")) == [f"products/SKU-{n}" for n in range(1, 6)]


def test_one_failing_item_leaves_the_others_done_and_is_retried_on_the_next_run(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    commerce.fail["PUT products/SKU-1"] = [400]
    run = _run(connection)
    assert (run.counts.written, run.counts.failed) == (2, 1)
    failed = SyncLink.objects.get(connection=connection, fusion_key="300100001")
    assert failed.state == SyncLink.State.FAILED and "Injected 400" in failed.last_error
    assert SyncRun.objects.get(connection=connection).failed == 1
    # The next run: Fusion sends nothing about SKU-1 (its stamp is far behind the overlap); it is retried anyway.
    commerce.writes.clear()
    run = _run(connection)
    assert [p for p, _ in commerce.writes_to("PUT", "products/")] == ["products/SKU-1"]
    failed.refresh_from_db()
    assert failed.state == SyncLink.State.LINKED and failed.last_error == "" and run.counts.failed == 0


def test_the_watermark_passes_only_records_whose_outcome_is_kept(connection, systems, monkeypatch):
    fusion, commerce = systems
    _three(fusion, commerce)
    monkeypatch.setattr("sync.flows.fusion_items.BATCH_SIZE", 1)
    write = ProductSide.write

    def killed_on_sku_2(self, target, commerce_id, changes):
        if commerce_id == "SKU-2":
            raise RuntimeError("worker killed")
        return write(self, target, commerce_id, changes)

    monkeypatch.setattr(ProductSide, "write", killed_on_sku_2)
    with pytest.raises(RuntimeError, match="worker killed"):
        _run(connection)
    assert _watermark(connection) == datetime.fromisoformat(T0)  # SKU-1 settled; SKU-2 not, nor anything after
    row = SyncRun.objects.get(connection=connection)
    assert row.status == SyncRun.Status.FAILED and "worker killed" in row.error
    monkeypatch.setattr(ProductSide, "write", write)
    fusion.requests.clear()
    _run(connection)  # the next run starts before SKU-2 and settles it
    assert fusion.requests[0]["q"].endswith("'2026-11-01T09:55:00+00:00'")
    assert sorted(p for p, _ in commerce.writes_to("PUT", "products/")) == [
        "products/SKU-1",
        "products/SKU-2",
        "products/SKU-3",
    ]


def test_5xx_and_429_are_retried_with_backoff(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    fusion.fail = [429]
    commerce.fail["PUT products/SKU-2"] = [503, 429]
    run = _run(connection)
    assert (run.counts.written, run.counts.failed) == (3, 0)
    assert len(commerce.writes_to("PUT", "products/SKU-2")) == 3


def test_an_item_without_a_product_is_reported_not_created(connection, systems):
    fusion, commerce = systems
    fusion.items = [item(1, T0)]
    run = _run(connection)
    assert run.counts.unmatched == 1 and commerce.writes == []
    assert SyncLink.objects.get(connection=connection).state == SyncLink.State.UNMATCHED
    calls = len(commerce.calls)
    _run(connection)  # unchanged and known to have no match: Commerce is not asked again
    assert len(commerce.calls) == calls


def test_with_creation_on_a_disabled_simple_product_is_created_globally(connection, systems):
    fusion, commerce = systems
    FusionSyncSettings.objects.filter(connection=connection).update(item_create_missing=True)
    fusion.items = [item(1, T0), item(2, T0, status="Inactive")]
    run = _run(connection)
    ((path, body),) = commerce.writes_to("POST", "products")
    assert path == "products" and commerce.calls[-1] == ("POST", "products")
    product = body["product"]
    assert (product["sku"], product["status"], product["visibility"], product["type_id"]) == ("SKU-1", 2, 1, "simple")
    assert {"attribute_code": "erp_item_number", "value": "SKU-1"} in product["custom_attributes"]
    assert run.counts.created == 1 and run.counts.unmatched == 1  # an inactive item gets no product


def test_a_dry_run_lists_what_would_change_and_writes_nothing(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    events = []
    run = _run(connection, dry_run=True, progress=lambda event, data: events.append((event, data)))
    assert run.counts.written == 3
    assert commerce.writes == []
    assert [d["commerce_id"] for e, d in events if e == "written"] == ["SKU-1", "SKU-2", "SKU-3"]
    assert SyncLink.objects.count() == SyncRun.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="fusion_sync").exists()
    assert _watermark(connection) is None


def test_a_value_the_sync_wrote_is_not_written_again_nor_read_back_as_a_change(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    commerce.writes.clear()
    # Fusion stamps the items again without changing them (as after a mass update): nothing to write.
    fusion.items = [dict(i, LastUpdateDateTime="2026-11-05T10:00:00+00:00") for i in fusion.items]
    run = _run(connection)
    assert run.counts.read == 3 and run.counts.unchanged == 3 and commerce.writes == []
    # A full run reads Commerce back: the values there are the sync's own, so again nothing is written.
    run = _run(connection, full=True)
    assert run.counts.unchanged == 3 and commerce.writes == []


def test_a_rule_change_reaches_the_affected_products_on_the_next_gl_run(connection, systems):
    fusion, commerce = systems
    fusion.items = [item(1, T0, number="LAP-15"), item(2, T0, number="LAP-17"), item(3, T0, number="DOCK-1")]
    for sku in ("LAP-15", "LAP-17", "DOCK-1"):
        commerce.product(sku)
    rule = rule_save(
        rule=ProductRule(
            connection=connection, match_type="sku_pattern", match_value="LAP-*", segments={"account": "4110"}
        ),
        actor="test",
    )
    _run(connection)
    assert attributes_of(commerce.products["LAP-15"])["erp_gl_revenue"] == "account=4110"
    assert "erp_gl_revenue" not in attributes_of(commerce.products["DOCK-1"])
    commerce.writes.clear()
    gl = fusion_sync_run(connection=connection, stream="gl")
    assert commerce.writes == [] and gl.counts.commerce_requests == 0  # nothing changed: not a single call
    rule.segments = {"account": "4120"}
    rule_save(rule=rule, actor="test")
    fusion.requests.clear()
    gl = fusion_sync_run(connection=connection, stream="gl")
    writes = commerce.writes_to("PUT", "products/")
    assert sorted(p for p, _ in writes) == ["products/LAP-15", "products/LAP-17"]
    sent = writes[0][1]["product"]["custom_attributes"]
    assert sent == [{"attribute_code": "erp_gl_revenue", "value": "account=4120"}]
    assert gl.counts.written == 2 and gl.counts.unchanged == 1 and fusion.requests == []
    commerce.writes.clear()
    assert fusion_sync_run(connection=connection, stream="gl").counts.written == 0 and commerce.writes == []


def test_a_run_without_the_item_organisation_is_refused_before_reading(connection, systems):
    fusion, _ = systems
    FusionSyncSettings.objects.filter(connection=connection).update(item_organization="")
    with pytest.raises(fusion_runs.NotConfigured, match="item master organisation"):
        _run(connection)
    assert fusion.requests == [] and SyncRun.objects.count() == 0


def test_a_full_run_reports_an_item_gone_from_fusion_and_deletes_nothing(connection, systems):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    fusion.items = fusion.items[1:]
    commerce.writes.clear()
    run = _run(connection, full=True)
    assert run.counts.missing == 1 and commerce.writes == []
    assert SyncLink.objects.get(connection=connection, fusion_key="300100001").state == SyncLink.State.MISSING


def test_the_overlap_setting_moves_the_window(connection, systems, settings):
    fusion, commerce = systems
    _three(fusion, commerce)
    _run(connection)
    settings.CONNECTOR_FUSION_SYNC_OVERLAP_SECONDS = 2 * 86400
    fusion.requests.clear()
    run = _run(connection)
    assert run.counts.read == 3 and run.counts.written == 0
    since = datetime.fromisoformat(T2) - timedelta(days=2)
    assert fusion.requests[0]["q"].endswith(f"'{since.isoformat()}'")
