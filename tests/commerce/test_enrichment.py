"""Filling in the store code, website, attribute sets and categories the GL rules match on, from Commerce's REST
API, and what the pipeline does with them. Commerce and Fusion are mocked with `responses`."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache

from audit.models import AuditEvent
from commerce.client import CommerceClient, ProductFacts, StoreView
from commerce.enrichment import document_enrich, record_enrich
from connector.models import Record
from connector.records import record_accept
from core.errors import AuthError, TransientError
from mappings.models import ProductRule, StoreRule
from mappings.services import plan_for_record, rules_need
from sync.flows.sales_documents import record_process
from tests.factories import make_connection
from tests.fake_fusion import FakeFusion
from tests.posting import order_document, seed_mappings

REST = "https://shop.example.com/rest/default/V1"
STORE_VIEWS = f"{REST}/store/storeViews"
STORE_VIEW_LIST = [
    {"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0, "is_active": 1},
    {"id": 1, "code": "default", "name": "Default Store View", "website_id": 1, "store_group_id": 1, "is_active": 1},
    {"id": 3, "code": "eu_en", "name": "Europe English", "website_id": 2, "store_group_id": 2, "is_active": 1},
]


def product(sku: str, attribute_set_id: int = 4, categories: tuple[str, ...] = ()) -> dict:
    """GET /V1/products/{sku} trimmed by `fields` (Commerce sends category ids as strings)."""
    links = [{"position": n, "category_id": c} for n, c in enumerate(categories)]
    return {"sku": sku, "attribute_set_id": attribute_set_id, "extension_attributes": {"category_links": links}}


def commerce_calls(rsps: responses.RequestsMock) -> list[str]:
    return [call.request.url for call in rsps.calls if call.request.url.startswith(REST)]


@pytest.fixture(autouse=True)
def _fresh_cache(token_cache, settings):
    settings.CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS = 0
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def fusion():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeFusion(rsps)


@pytest.fixture
def connection(db):
    conn = make_connection(transaction_number_prefix="MAG-", retry_base_seconds=0, retry_cap_seconds=0)
    seed_mappings(conn)
    return conn


def _accept(connection, document):
    return record_accept(connection=connection, document=document).record


def _run(record) -> Record:
    record_process(record_id=record.pk)
    record.refresh_from_db()
    return record


def revenue_accounts(body: dict) -> list[str]:
    return [d["AccountCombination"] for d in body["receivablesInvoiceDistributions"] if d["AccountClass"] == "Revenue"]


# --- the client ---------------------------------------------------------------------------------------------


@responses.activate
def test_client_reads_store_views_and_product_facts(db):
    responses.get(STORE_VIEWS, json=STORE_VIEW_LIST)
    responses.get(f"{REST}/products/WS12-M%2FOrange", json=product("WS12-M/Orange", 9, ("3", "15", "3")))
    client = CommerceClient.for_connection(make_connection())

    assert client.store_views() == [
        StoreView("0", "admin", "0"),
        StoreView("1", "default", "1"),
        StoreView("3", "eu_en", "2"),
    ]
    assert client.product_facts("WS12-M/Orange") == ProductFacts("WS12-M/Orange", "9", ("3", "15"))
    query = parse_qs(urlsplit(responses.calls[1].request.url).query)
    assert query["fields"] == ["sku,attribute_set_id,extension_attributes[category_links]"]


# --- which facts are asked for ------------------------------------------------------------------------------


def test_rules_need_names_only_the_facts_enabled_rules_match_on(connection):
    assert rules_need(connection) == set()
    StoreRule.objects.create(connection=connection, match_type="store", match_value="1")
    ProductRule.objects.create(connection=connection, match_type="sku", match_value="LAP-15")
    ProductRule.objects.create(connection=connection, match_type="category", match_value="15", enabled=False)
    assert rules_need(connection) == set()
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    ProductRule.objects.create(connection=connection, match_type="attribute_set", match_value="4")
    assert rules_need(connection) == {"website", "attribute_set"}


def test_no_commerce_call_when_no_rule_matches_on_commerce_facts(connection):
    StoreRule.objects.create(connection=connection, match_type="store", match_value="3", business_unit="Vision Europe")
    document = dataclasses.replace(order_document(), store_id="3")
    with responses.RequestsMock() as rsps:  # any request would fail: none is registered
        assert document_enrich(document=document, connection=connection) is document
        assert len(rsps.calls) == 0


def test_no_commerce_call_when_the_document_already_carries_the_facts(connection):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    ProductRule.objects.create(connection=connection, match_type="category", match_value="15")
    document = order_document()
    document = dataclasses.replace(
        document,
        store_id="3",
        website_id="2",
        lines=tuple(dataclasses.replace(line, category_ids=("15",)) for line in document.lines),
    )
    with responses.RequestsMock() as rsps:
        assert document_enrich(document=document, connection=connection) == document
        assert len(rsps.calls) == 0


def test_a_second_document_is_served_from_the_cache(connection):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    ProductRule.objects.create(connection=connection, match_type="category", match_value="15")
    with responses.RequestsMock() as rsps:
        rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST)
        rsps.get(f"{REST}/products/LAP-15", json=product("LAP-15", 4, ("15",)))
        first = document_enrich(document=dataclasses.replace(order_document("1"), store_id="3"), connection=connection)
        second = document_enrich(document=dataclasses.replace(order_document("2"), store_id="3"), connection=connection)
        assert len(rsps.calls) == 2
    for document in (first, second):
        assert (document.website_id, document.store_code) == ("2", "eu_en")
        assert document.lines[0].category_ids == ("15",)
        assert document.lines[0].attribute_set_id == "4"


def test_an_unknown_store_view_reads_the_list_again_once(connection):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    with responses.RequestsMock() as rsps:
        rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST[:2])
        rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST)  # store view 3 created since the list was cached
        document_enrich(document=dataclasses.replace(order_document("1"), store_id="1"), connection=connection)
        enriched = document_enrich(
            document=dataclasses.replace(order_document("2"), store_id="3"), connection=connection
        )
        assert len(rsps.calls) == 2
    assert enriched.website_id == "2"


def test_a_configurable_child_takes_its_parents_categories(connection):
    ProductRule.objects.create(connection=connection, match_type="category", match_value="15")
    document = order_document()
    line = dataclasses.replace(document.lines[0], sku="MH01-XS-Black", parent_sku="MH01")
    with responses.RequestsMock() as rsps:
        rsps.get(f"{REST}/products/MH01-XS-Black", json=product("MH01-XS-Black", 9))
        rsps.get(f"{REST}/products/MH01", json=product("MH01", 9, ("15", "20")))
        enriched = document_enrich(document=dataclasses.replace(document, lines=(line,)), connection=connection)
    assert enriched.lines[0].category_ids == ("15", "20")


def test_an_invoice_without_a_store_id_is_looked_up_by_its_orders_store(connection):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    order = dataclasses.replace(order_document("555"), store_id="3")
    invoice = order_document("900", kind="invoice", order_entity_id="555")
    with responses.RequestsMock() as rsps:
        rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST)
        enriched = document_enrich(document=invoice, connection=connection, order=order)
    assert (enriched.store_id, enriched.website_id, enriched.store_code) == ("3", "2", "eu_en")


def test_a_commerce_failure_raises_the_usual_errors(connection):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    document = dataclasses.replace(order_document(), store_id="3")
    with responses.RequestsMock() as rsps:
        rsps.get(STORE_VIEWS, status=503, json={"message": "Service Unavailable"})
        with pytest.raises(TransientError):
            document_enrich(document=document, connection=connection)
    with responses.RequestsMock() as rsps:
        rsps.get(STORE_VIEWS, status=401, json={"message": "The consumer isn't authorized to access %resources."})
        with pytest.raises(AuthError):
            document_enrich(document=document, connection=connection)


# --- the pipeline -------------------------------------------------------------------------------------------


def test_a_store_rule_by_website_sets_the_business_unit_from_the_store_view(connection, fusion):
    StoreRule.objects.create(
        connection=connection, match_type="website", match_value="2", business_unit="Vision Europe"
    )
    fusion.rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST)
    record = _run(_accept(connection, dataclasses.replace(order_document(), store_id="3")))

    assert record.state == Record.State.POSTED, record.last_error
    (body,) = fusion.posts
    assert body["BusinessUnit"] == "Vision Europe"
    assert record.plan["header"]["store_reason"] == "store rule website=2"
    # The record keeps the enriched document, so the preview resolves the same way.
    assert (record.document["website_id"], record.document["store_code"]) == ("2", "eu_en")
    assert plan_for_record(record).header.business_unit == "Vision Europe"
    event = AuditEvent.objects.get(action="record.enriched", target_id=str(record.pk))
    assert "website id 2" in event.message and event.data["filled"]["website_id"] == "2"


def test_a_product_rule_by_category_sets_the_revenue_account(connection, fusion):
    ProductRule.objects.create(
        connection=connection, match_type="category", match_value="15", segments={"Account": "4150"}
    )
    fusion.rsps.get(f"{REST}/products/LAP-15", json=product("LAP-15", 4, ("15",)))
    record = _run(_accept(connection, order_document()))

    assert record.state == Record.State.POSTED, record.last_error
    (body,) = fusion.posts
    assert revenue_accounts(body) == ["01-000-4150-0000-000"]
    assert record.document["lines"][0]["category_ids"] == ["15"]


def test_postings_without_commerce_fact_rules_make_no_commerce_call(connection, fusion):
    record = _run(_accept(connection, dataclasses.replace(order_document(), store_id="3")))
    assert record.state == Record.State.POSTED, record.last_error
    assert commerce_calls(fusion.rsps) == []
    assert not AuditEvent.objects.filter(action="record.enriched").exists()


def test_a_website_commerce_does_not_know_parks_the_record_with_the_fix(connection, fusion):
    StoreRule.objects.create(
        connection=connection, match_type="website", match_value="2", business_unit="Vision Europe"
    )
    fusion.rsps.get(STORE_VIEWS, json=STORE_VIEW_LIST)
    record = _run(_accept(connection, dataclasses.replace(order_document(), store_id="7")))

    assert record.state == Record.State.NEEDS_REVIEW
    assert fusion.posts == []
    assert "has no website id" in record.last_error and "store rules by website" in record.last_error
    assert record.resolution_hint.startswith("Resolution:")
    assert "store/storeViews" in record.resolution_hint


def test_a_product_commerce_does_not_have_parks_the_record_with_the_fix(connection, fusion):
    ProductRule.objects.create(
        connection=connection, match_type="category", match_value="15", segments={"Account": "4150"}
    )
    fusion.rsps.get(
        f"{REST}/products/LAP-15",
        status=404,
        json={"message": "The product that was requested doesn't exist. Verify the product and try again."},
    )
    record = _run(_accept(connection, order_document()))

    assert record.state == Record.State.NEEDS_REVIEW
    assert fusion.posts == []
    assert "SKU LAP-15 has no category" in record.last_error
    assert record.resolution_hint.startswith("Resolution:") and "GET /V1/products/LAP-15" in record.resolution_hint


def test_commerce_unavailable_during_enrichment_retries_the_record(connection, fusion):
    StoreRule.objects.create(connection=connection, match_type="website", match_value="2")
    fusion.rsps.get(STORE_VIEWS, status=503, json={"message": "Service Unavailable"})
    record = _run(_accept(connection, dataclasses.replace(order_document(), store_id="3")))
    assert record.state == Record.State.RETRYING
    assert fusion.posts == []


def test_record_enrich_leaves_a_record_alone_when_nothing_is_missing(connection):
    record = _accept(connection, order_document())
    before = dict(record.document)
    with responses.RequestsMock() as rsps:
        record_enrich(record=record)
        assert len(rsps.calls) == 0
    record.refresh_from_db()
    assert record.document == before
