"""Commerce payloads -> SalesDocument: the envelopes, string values, folding of parent/child rows, money."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from commerce.envelopes import UnreadablePayload, envelope_parse
from commerce.payloads import creditmemo_document, document_from_entity, invoice_document, order_document
from connector.documents import SalesDocument

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "commerce"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_observer_envelope_finds_the_order_not_the_data_object_copy():
    envelope = envelope_parse(fixture("order_place_after.json"))
    assert envelope.event_name == "observer.sales_order_save_commit_after"
    assert envelope.kind == "order"
    assert envelope.entity["customer_email"] == "guest@example.com"


def test_observer_event_name_without_prefix_is_read_as_observer():
    envelope = envelope_parse(fixture("invoice_save_after.json"))
    assert (envelope.event_name, envelope.kind) == ("observer.sales_order_invoice_save_after", "invoice")


def test_observer_falls_back_to_data_object_when_the_named_copy_is_absent():
    body = {"eventName": "observer.sales_order_place_after", "data": {"data_object": {"entity_id": "5"}}}
    assert envelope_parse(body).entity == {"entity_id": "5"}


def test_plugin_hook_takes_the_saved_result_over_the_unsaved_argument():
    order = fixture("order_plugin_place_before.json")["order"]
    saved = {**order, "entity_id": "43"}
    envelope = envelope_parse({"order": order, "result": saved})
    assert envelope.kind == "order" and envelope.entity["entity_id"] == "43"
    assert envelope.event_name == "plugin.magento.sales.api.order_management.place"


def test_plugin_repository_entity_is_classified_by_its_shape_or_the_url_hint():
    memo = fixture("creditmemo_save_after.json")["data"]["creditmemo"]
    assert envelope_parse({"entity": memo}).kind == "creditmemo"
    invoice = fixture("invoice_save_after.json")["data"]["invoice"]
    assert envelope_parse({"entity": invoice}).kind == "invoice"
    hinted = envelope_parse({"entity": invoice}, hint="plugin.magento.sales.api.invoice_repository.create")
    assert hinted.event_name == "plugin.magento.sales.api.invoice_repository.create"


def test_io_events_cloudevent_unwraps_data_value():
    envelope = envelope_parse(fixture("io_events_order_place_after.json"))
    assert envelope.event_name == "observer.sales_order_place_after"
    assert envelope.kind == "order"
    assert envelope.event_id == "5b1b5a2e-7e6c-4a53-9b8e-0d7a1c2f3e4d"
    assert envelope.entity["increment_id"] == "000000044"


def test_unknown_event_type_has_no_kind():
    envelope = envelope_parse({"eventName": "observer.catalog_product_save_after", "data": {"product": {}}})
    assert envelope.kind is None and envelope.event_name == "observer.catalog_product_save_after"


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"hello": "world"},
        {"eventName": "observer.sales_order_place_after", "data": "nope"},
        {"eventName": "observer.sales_order_place_after", "data": {"quote": {}}},
        {"specversion": "1.0", "type": "com.adobe.commerce.observer.sales_order_place_after", "data": {}},
    ],
)
def test_shapes_we_do_not_understand_are_unreadable(body):
    with pytest.raises(UnreadablePayload):
        envelope_parse(body)


def test_order_with_string_values_becomes_decimal_money():
    doc = order_document(fixture("order_place_after.json")["data"]["order"])
    assert doc.kind == "order" and doc.entity_id == "42" and doc.increment_id == "000000042"
    assert doc.created_at == datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)
    assert doc.currency == "USD"
    assert doc.grand_total == Decimal("85.99") and str(doc.grand_total) == "85.99"
    assert doc.shipping_amount == Decimal("10.00")
    assert doc.tax_total == Decimal("5.79")
    assert doc.discount_total == Decimal("7.80")
    assert all(isinstance(line.row_total, Decimal) for line in doc.lines)
    # the document adds up: lines net + tax + shipping == grand total
    total = sum(line.net for line in doc.lines) + doc.tax_total + doc.shipping_amount - doc.shipping_discount
    assert total == doc.grand_total


def test_configurable_parent_and_child_fold_into_one_priced_line():
    doc = order_document(fixture("order_place_after.json")["data"]["order"])
    assert [line.sku for line in doc.lines] == ["WS12-M-Orange", "24-MB01"]
    tee = doc.lines[0]
    assert tee.qty == Decimal(2) and str(tee.qty) == "2"
    assert tee.unit_price == Decimal("22") and tee.row_total == Decimal("44.00")
    assert tee.discount == Decimal("4.40") and tee.tax == Decimal("3.27")
    assert tee.product_type == "configurable" and tee.name == "Radiant Tee"


def test_configurable_child_sku_wins_when_it_differs_from_the_parent_row():
    order = fixture("order_place_after.json")["data"]["order"]
    order["items"][1]["sku"] = "WS12-M-Orange-CHILD"
    line = order_document(order).lines[0]
    assert line.sku == "WS12-M-Orange-CHILD" and line.parent_sku == "WS12-M-Orange"
    assert line.row_total == Decimal("44.00")


def test_guest_order_has_a_guest_customer_named_from_the_billing_address():
    doc = order_document(fixture("order_place_after.json")["data"]["order"])
    assert doc.customer.is_guest and doc.customer.commerce_id == ""
    assert (doc.customer.firstname, doc.customer.lastname) == ("Gwen", "Guest")
    assert doc.customer.email == "guest@example.com"


def test_dynamic_bundle_children_carry_the_money_in_a_zero_decimal_currency():
    entity = fixture("io_events_order_place_after.json")["data"]["value"]
    doc = order_document(entity)
    assert doc.currency == "JPY" and doc.grand_total == Decimal("3300")
    assert [(line.sku, line.parent_sku, line.row_total) for line in doc.lines] == [
        ("24-WG084", "24-WG080", Decimal("1000")),
        ("24-WG088", "24-WG080", Decimal("2000")),
    ]
    assert not doc.customer.is_guest and doc.customer.commerce_id == "7"


def test_fixed_price_bundle_is_one_line_on_the_parent():
    entity = fixture("io_events_order_place_after.json")["data"]["value"]
    entity["items"][0].update(price=3000, row_total=3000, tax_amount=300)
    for child in entity["items"][1:]:
        child.update(price=0, row_total=0, tax_amount=0)
    doc = order_document(entity)
    assert [(line.sku, line.row_total) for line in doc.lines] == [("24-WG080", Decimal("3000"))]


def test_invoice_drops_the_configurable_child_row_and_links_its_order():
    doc = invoice_document(fixture("invoice_save_after.json")["data"]["invoice"])
    assert doc.kind == "invoice" and doc.entity_id == "3" and doc.order_entity_id == "42"
    assert [(line.sku, line.qty, line.row_total) for line in doc.lines] == [
        ("WS12-M-Orange", Decimal(2), Decimal("44.00")),
        ("24-MB01", Decimal(1), Decimal("34.00")),
    ]
    assert doc.grand_total == Decimal("85.99")


def test_credit_memo_keeps_its_adjustments():
    doc = creditmemo_document(fixture("creditmemo_save_after.json")["data"]["creditmemo"])
    assert doc.kind == "creditmemo" and doc.order_entity_id == "42"
    assert doc.adjustment_positive == Decimal("5.00") and doc.adjustment_negative == Decimal("1.86")
    assert doc.grand_total == Decimal("41.26")
    total = (
        sum(line.net for line in doc.lines)
        + doc.tax_total
        + doc.shipping_amount
        + doc.adjustment_positive
        - doc.adjustment_negative
    )
    assert total == doc.grand_total


def test_mixed_numbers_and_strings_and_floats_do_not_pick_up_binary_noise():
    order = fixture("order_plugin_place_before.json")["order"]
    order.update(entity_id=43, grand_total=125.1, tax_amount="20.1000")
    doc = order_document(order)
    assert doc.grand_total == Decimal("125.10") and doc.currency == "EUR"
    assert doc.entity_id == "43" and doc.lines[0].qty == Decimal(2)


def test_document_survives_the_json_round_trip_the_record_stores():
    doc = order_document(fixture("order_place_after.json")["data"]["order"])
    assert SalesDocument.from_json(json.loads(json.dumps(doc.to_json()))) == doc


@pytest.mark.parametrize(
    "name, build",
    [
        ("order_place_after.json", lambda f: order_document(f["data"]["order"])),
        ("order_gift_card_tax_inclusive.json", lambda f: order_document(f["data"]["order"])),
        ("order_plugin_place_before.json", lambda f: order_document(f["order"])),
    ],
)
def test_the_document_the_record_stores_reads_back_the_same(name, build):
    doc = build(fixture(name))
    stored = json.loads(json.dumps(doc.to_json()))  # what the record's JSON column holds
    assert SalesDocument.from_json(stored) == doc


@pytest.mark.parametrize(
    "change, words",
    [
        ({"grand_total": None}, "grand_total is missing"),
        ({"grand_total": "12,50"}, "grand_total is not a number"),
        ({"order_currency_code": "US", "base_currency_code": None}, "not a currency code"),
        ({"items": []}, "no items"),
        ({"created_at": "yesterday"}, "created_at is not a date"),
    ],
)
def test_unreadable_orders_say_why(change, words):
    order = fixture("order_place_after.json")["data"]["order"]
    order.update(change)
    with pytest.raises(UnreadablePayload, match=words):
        document_from_entity("order", order)


# --- tax-inclusive discounts and payments taken inside Commerce -------------------------------------------------


def gift_card_order() -> dict:
    return fixture("order_gift_card_tax_inclusive.json")["data"]["order"]


def test_tax_inclusive_discount_keeps_its_tax_compensation_per_line_and_on_shipping():
    doc = order_document(gift_card_order())
    assert [(line.sku, line.discount, line.tax, line.discount_tax_compensation) for line in doc.lines] == [
        ("MH01-L-Black", Decimal("12.00"), Decimal("18.00"), Decimal("2.00")),
        ("24-UG04", Decimal("2.70"), Decimal("4.05"), Decimal("0.45")),
    ]
    assert doc.lines[0].net == Decimal("90.00")  # 100.00 less the discount's 10.00 without its tax
    assert doc.discount_tax_compensation == Decimal("2.45")
    assert doc.shipping_discount_tax_compensation == Decimal("0.10")


def test_gift_card_store_credit_and_reward_points_are_read_as_payments():
    doc = order_document(gift_card_order())
    assert (doc.gift_cards_amount, doc.customer_balance_amount, doc.reward_currency_amount) == (
        Decimal("25.00"),
        Decimal("10.00"),
        Decimal("2.70"),
    )
    assert doc.prepaid_total == Decimal("37.70")


def test_the_tax_inclusive_gift_card_order_adds_up_to_its_grand_total():
    doc = order_document(gift_card_order())
    total = (
        sum(line.net for line in doc.lines)
        + doc.tax_total
        + doc.shipping_amount
        - doc.shipping_discount
        + doc.shipping_discount_tax_compensation
        - doc.prepaid_total
    )
    assert total == doc.grand_total == Decimal("100.00")


def test_rest_invoice_reads_the_payments_from_its_extension_attributes():
    doc = invoice_document(fixture("invoice_gift_card_rest.json"))
    assert doc.currency == "GBP" and doc.order_entity_id == "57"
    assert (doc.gift_cards_amount, doc.customer_balance_amount, doc.reward_currency_amount) == (
        Decimal("25.00"),
        Decimal("10.00"),
        Decimal("2.70"),
    )
    # An invoice's header compensation includes the shipping's.
    assert doc.discount_tax_compensation == Decimal("2.55")
    # Invoices have no shipping_discount_amount: the shipping's share of discount_amount is what the items leave.
    assert doc.shipping_discount == Decimal("0.60") and doc.shipping_discount_tax_compensation == Decimal("0.10")
    assert [line.discount_tax_compensation for line in doc.lines] == [Decimal("2.00"), Decimal("0.45")]


def test_an_invoice_whose_items_do_not_say_their_discount_puts_none_of_it_on_shipping():
    invoice = fixture("invoice_gift_card_rest.json")
    invoice["discount_amount"] = -2.7  # small enough to pass for a shipping discount
    for item in invoice["items"]:
        del item["discount_amount"]
    assert invoice_document(invoice).shipping_discount == 0


def test_orders_without_these_amounts_read_them_as_zero():
    doc = order_document(fixture("order_place_after.json")["data"]["order"])
    assert doc.prepaid_total == 0 and doc.discount_tax_compensation == 0
    assert doc.shipping_discount_tax_compensation == 0
    assert all(line.discount_tax_compensation == 0 for line in doc.lines)


def test_new_amounts_survive_the_json_round_trip_and_old_json_still_loads():
    doc = order_document(gift_card_order())
    stored = json.loads(json.dumps(doc.to_json()))
    assert stored["gift_cards_amount"] == "25.00" and stored["lines"][0]["discount_tax_compensation"] == "2.00"
    assert SalesDocument.from_json(stored) == doc
    # A record stored before these fields existed.
    old = {k: v for k, v in stored.items() if k not in {"gift_cards_amount", "discount_tax_compensation"}}
    old["lines"] = [{k: v for k, v in line.items() if k != "discount_tax_compensation"} for line in stored["lines"]]
    loaded = SalesDocument.from_json(old)
    assert loaded.gift_cards_amount == 0 and loaded.lines[0].discount_tax_compensation == 0


def test_an_orders_applied_taxes_reach_its_lines_its_shipping_and_the_tax_country():
    doc = order_document(fixture("order_rest_applied_taxes.json"))
    laptop, book, snack = doc.lines
    assert [(t.code, t.title, t.percent, t.amount) for t in laptop.taxes] == [
        ("US-TX-*-Rate State", "TX State", Decimal("6.25"), Decimal("62.5")),
        ("US-TX-Austin-City", "Austin City", Decimal("2"), Decimal("20")),
    ]
    assert book.taxes == () and book.tax_percent == 0
    assert [t.code for t in snack.taxes] == ["US-TX-Austin-City"]
    assert [(t.code, t.amount) for t in doc.shipping_taxes] == [("US-TX-*-Rate State", Decimal("0.63"))]
    assert [t.title for t in doc.applied_taxes] == ["TX State", "Austin City"]
    assert doc.tax_country == "US"  # the shipping address's
    # Stored as JSON and read back, with the breakdown; a raw webhook entity carries the lists at its top level.
    assert SalesDocument.from_json(json.loads(json.dumps(doc.to_json()))) == doc
    raw = fixture("order_rest_applied_taxes.json")
    extension = raw.pop("extension_attributes")
    raw.update(applied_taxes=extension["applied_taxes"], item_applied_taxes=extension["item_applied_taxes"])
    raw_doc = order_document(raw)
    assert raw_doc.lines[0].taxes == laptop.taxes and raw_doc.tax_country == "US"  # the billing address's


def test_documents_stored_before_the_tax_facts_load_with_none():
    stored = order_document(fixture("order_place_after.json")["data"]["order"]).to_json()
    for key in ("applied_taxes", "shipping_taxes", "tax_country"):
        stored.pop(key)
    for line in stored["lines"]:
        line.pop("taxes")
    loaded = SalesDocument.from_json(stored)
    assert (loaded.applied_taxes, loaded.shipping_taxes, loaded.tax_country) == ((), (), "")
    assert all(line.taxes == () for line in loaded.lines)
