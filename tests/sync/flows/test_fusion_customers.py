"""The customers stream of the sync from Fusion against Fusion's and Commerce's HTTP contracts (responses)."""

from __future__ import annotations

import pytest
import responses
from django.core.cache import cache

from audit.models import AuditEvent
from mappings.models import CustomerRule
from mappings.services import rule_save
from sync.flows.fusion_runs import fusion_sync_run
from sync.models import FusionSyncSettings, SyncLink, SyncRun
from tests.factories import make_connection
from tests.sync.fusion_fakes import FakeCommerce, FakeFusionMaster, attributes_of, site


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
    return make_connection()


def _run(connection, **kwargs):
    return fusion_sync_run(connection=connection, stream="customers", **kwargs)


def _two(fusion, commerce):
    fusion.sites = [
        site("1008", 1042, "CSR Seattle"),
        site("1008", 1043, "CSR Portland", primary="N"),
        site("20002", 5003, "Purchase NY"),
    ]
    commerce.customer(1, "jdoe@example.com", erp_account_number="20002", loyalty="gold")
    commerce.customer(3, "buyer@csr.example.com", erp_account_number="1008")


def test_accounts_reach_their_commerce_customers_with_a_safe_put_and_become_synced_rules(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    run = _run(connection)
    assert (run.counts.read, run.counts.written, run.counts.failed) == (2, 2, 0)
    ((path, body),) = [w for w in commerce.writes_to("PUT", "customers/1")]
    sent = body["customer"]
    assert {k: sent[k] for k in ("id", "email", "firstname", "lastname", "website_id", "group_id", "store_id")} == {
        "id": 1,
        "email": "jdoe@example.com",
        "firstname": "First",
        "lastname": "Last1",
        "website_id": 1,
        "group_id": 1,
        "store_id": 1,
    }
    assert "addresses" not in sent  # a PUT with addresses would replace them
    assert {a["attribute_code"]: a["value"] for a in sent["custom_attributes"]} == {
        "erp_account_number": "20002",
        "loyalty": "gold",  # every attribute the customer had goes back
        "erp_bill_to_site": "Purchase NY",
    }
    assert attributes_of(commerce.customers[3])["erp_bill_to_site"] == "CSR Seattle"  # the primary site
    rule = CustomerRule.objects.get(connection=connection, match_value="3")
    assert (rule.match_type, rule.bill_to_customer_number, rule.bill_to_site) == ("customer_id", "1008", "1042")
    assert rule.synced_from_fusion
    assert AuditEvent.objects.filter(action="mappings.customer.created", target_id=str(rule.pk)).exists()
    assert AuditEvent.objects.filter(action="fusion_sync.customer_updated", target_id="1").exists()


def test_an_unchanged_read_makes_one_fusion_request_and_no_commerce_request(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    _run(connection)
    calls, fusion.requests[:] = len(commerce.calls), []
    run = _run(connection)
    assert len(fusion.requests) == 1 and len(commerce.calls) == calls
    assert run.counts.unchanged == 2 and run.counts.written == 0


def test_a_change_in_fusion_is_written_to_that_customer_only(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    _run(connection)
    fusion.sites[2] = site("20002", 5003, "Purchase NY HQ")
    commerce.calls.clear()
    commerce.writes.clear()
    run = _run(connection)
    assert commerce.calls == [("GET", "customers/1"), ("PUT", "customers/1")]
    assert attributes_of(commerce.customers[1])["erp_bill_to_site"] == "Purchase NY HQ"
    assert run.counts.written == 1 and run.counts.unchanged == 1


def test_a_change_to_another_site_only_is_not_a_write(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    _run(connection)
    fusion.sites[1] = site("1008", 1043, "CSR Portland West", primary="N")
    commerce.calls.clear()
    run = _run(connection)
    assert commerce.calls == [] and run.counts.unchanged == 2


def test_an_account_without_a_customer_is_reported_not_created(connection, systems):
    fusion, commerce = systems
    fusion.sites = [site("30000", 9001, "Nowhere")]
    run = _run(connection)
    assert run.counts.unmatched == 1 and commerce.writes == []
    assert SyncLink.objects.get(connection=connection).state == SyncLink.State.UNMATCHED


def test_with_email_matching_and_creation_on_a_missing_customer_is_created(connection, systems):
    fusion, commerce = systems
    FusionSyncSettings.objects.filter(connection=connection).update(
        customer_match="email", customer_email_field="EmailAddress", customer_create_missing=True
    )
    fusion.sites = [site("30000", 9001, "Main", EmailAddress="New.Buyer@Example.com", CustomerName="Ann Lee")]
    run = _run(connection)
    ((path, body),) = commerce.writes_to("POST", "customers")
    assert body["customer"]["email"] == "new.buyer@example.com"
    assert (body["customer"]["firstname"], body["customer"]["lastname"]) == ("Ann", "Lee")
    assert {"attribute_code": "erp_account_number", "value": "30000"} in body["customer"]["custom_attributes"]
    assert run.counts.created == 1 and run.counts.written == 1
    assert CustomerRule.objects.filter(connection=connection, synced_from_fusion=True).count() == 1


def test_email_matching_finds_the_customer_by_the_fusion_email_attribute(connection, systems):
    fusion, commerce = systems
    FusionSyncSettings.objects.filter(connection=connection).update(
        customer_match="email", customer_email_field="EmailAddress"
    )
    fusion.sites = [site("30000", 9001, "Main", EmailAddress="jdoe@example.com")]
    commerce.customer(1, "jdoe@example.com")
    run = _run(connection)
    assert run.counts.written == 1 and commerce.writes_to("POST", "customers") == []
    assert attributes_of(commerce.customers[1])["erp_account_number"] == "30000"


def test_one_failing_customer_leaves_the_others_done_and_is_retried_next_run(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    commerce.fail["PUT customers/1"] = [400]
    run = _run(connection)
    assert (run.counts.written, run.counts.failed) == (1, 1)
    link = SyncLink.objects.get(connection=connection, commerce_id="1")
    assert link.state == SyncLink.State.FAILED and "Injected 400" in link.last_error
    run = _run(connection)
    assert run.counts.written == 1 and run.counts.failed == 0
    link.refresh_from_db()
    assert link.state == SyncLink.State.LINKED


def test_an_account_gone_from_fusion_is_reported_and_nothing_is_deleted(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    _run(connection)
    fusion.sites = fusion.sites[:2]
    commerce.calls.clear()
    run = _run(connection)
    assert run.counts.missing == 1
    assert all(method == "GET" for method, _ in commerce.calls)  # no write, no delete
    assert SyncLink.objects.get(connection=connection, fusion_key="20002").state == SyncLink.State.MISSING
    assert AuditEvent.objects.filter(action="fusion_sync.customer_missing", target_id="20002").exists()
    assert fusion.requests[-1]["q"] == "AccountNumber = '20002'"  # asked once more before reporting


def test_a_dry_run_writes_nothing(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    lines = []
    run = _run(connection, dry_run=True, progress=lambda event, data: lines.append(event))
    assert run.counts.written == 2 and lines.count("written") == 2
    assert commerce.writes == []
    assert SyncLink.objects.count() == SyncRun.objects.count() == 0
    assert not CustomerRule.objects.exists()


def test_a_customer_rule_change_reaches_the_customers_and_their_synced_rules(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    rule = rule_save(
        rule=CustomerRule(
            connection=connection, match_type="customer_group", match_value="1", bill_to_customer_number="999",
            segments={"channel": "20"},
        ),
        actor="test",
    )  # fmt: skip
    _run(connection)
    assert attributes_of(commerce.customers[1])["erp_gl_assignment"] == "channel=20"
    synced = CustomerRule.objects.get(connection=connection, match_value="1", synced_from_fusion=True)
    assert synced.segments == {"channel": "20"}  # posting keeps the channel the group rule gives
    rule.segments = {"channel": "30"}
    rule_save(rule=rule, actor="test")
    commerce.writes.clear()
    gl = fusion_sync_run(connection=connection, stream="gl")
    assert sorted(p for p, _ in commerce.writes_to("PUT", "customers/")) == ["customers/1", "customers/3"]
    assert attributes_of(commerce.customers[3])["erp_gl_assignment"] == "channel=30"
    synced.refresh_from_db()
    assert synced.segments == {"channel": "30"} and gl.counts.written == 2


def test_a_rule_a_person_keeps_for_the_customer_is_left_alone(connection, systems):
    fusion, commerce = systems
    _two(fusion, commerce)
    mine = rule_save(
        rule=CustomerRule(
            connection=connection, match_type="customer_id", match_value="3", bill_to_customer_number="777"
        ),
        actor="finance",
    )
    _run(connection)
    mine.refresh_from_db()
    assert mine.bill_to_customer_number == "777" and not mine.synced_from_fusion
    assert CustomerRule.objects.filter(connection=connection, match_value="3").count() == 1
