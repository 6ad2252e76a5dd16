"""Sample products (GET /V1/products/{sku}) and store views (GET /V1/store/storeConfigs)."""

from __future__ import annotations

from typing import Any


def seed_products() -> list[dict[str, Any]]:
    def product(
        pid: int,
        sku: str,
        name: str,
        price: str,
        type_id: str = "simple",
        attributes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return {
            "id": pid,
            "sku": sku,
            "name": name,
            "attribute_set_id": 4,
            "price": price,
            "status": 1,
            "visibility": 4,
            "type_id": type_id,
            "weight": "1.0000",
            "created_at": "2026-09-01 10:00:00",
            "updated_at": "2026-09-01 10:00:00",
            "extension_attributes": {"website_ids": [1]},
            "product_links": [],
            "options": [],
            "media_gallery_entries": [],
            "tier_prices": [],
            "custom_attributes": attributes or [{"attribute_code": "tax_class_id", "value": "2"}],
        }

    return [
        product(1553, "WS12-M-Orange", "Radiant Tee-M-Orange", "22.0000"),
        product(1200, "MH01", "Chaz Kangeroo Hoodie", "52.0000", type_id="configurable"),
        product(1201, "MH01-XS-Black", "Chaz Kangeroo Hoodie-XS-Black", "52.0000"),
        product(1, "24-MB01", "Joust Duffle Bag", "34.0000"),
        product(
            2001,
            "SKU-LAPTOP-15",
            "Laptop 15in",
            "1299.9900",
            attributes=[
                {"attribute_code": "tax_class_id", "value": "2"},
                {"attribute_code": "erp_item_status", "value": "Active"},
            ],
        ),
    ]


STORE_CONFIGS = [
    {
        "id": 1,
        "code": "default",
        "website_id": 1,
        "locale": "en_US",
        "base_currency_code": "USD",
        "default_display_currency_code": "USD",
        "timezone": "America/Chicago",
        "weight_unit": "lbs",
        "base_url": "http://shop.example.test/",
        "base_link_url": "http://shop.example.test/",
        "secure_base_url": "https://shop.example.test/",
        "secure_base_link_url": "https://shop.example.test/",
    },
]
