"""Sample customers, in the shape GET /V1/customers/{id} answers: two with the `erp_account_number` custom
attribute naming their Fusion customer account, one without."""

from __future__ import annotations

from typing import Any


def seed_customers() -> list[dict[str, Any]]:
    def customer(
        cid: int,
        email: str,
        first: str,
        last: str,
        created: str,
        updated: str,
        attributes: list[dict[str, str]],
        addresses: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "group_id": 1,
            "default_billing": str(addresses[0]["id"]) if addresses else None,
            "default_shipping": str(addresses[0]["id"]) if addresses else None,
            "created_at": created,
            "updated_at": updated,
            "created_in": "Default Store View",
            "email": email,
            "firstname": first,
            "lastname": last,
            "store_id": 1,
            "website_id": 1,
            "addresses": addresses,
            "disable_auto_group_change": 0,
            "extension_attributes": {"is_subscribed": False},
            "custom_attributes": attributes,
        }

    def address(
        aid: int,
        cid: int,
        first: str,
        last: str,
        street: str,
        city: str,
        region: str,
        region_id: int,
        postcode: str,
        phone: str,
    ) -> dict[str, Any]:
        return {
            "id": aid,
            "customer_id": cid,
            "region": {"region_code": None, "region": region, "region_id": region_id},
            "region_id": region_id,
            "country_id": "US",
            "street": [street],
            "telephone": phone,
            "postcode": postcode,
            "city": city,
            "firstname": first,
            "lastname": last,
            "default_shipping": True,
            "default_billing": True,
        }

    return [
        customer(
            1,
            "jdoe@example.com",
            "Jane",
            "Doe",
            "2026-09-20 10:00:00",
            "2026-09-20 10:00:00",
            [{"attribute_code": "erp_account_number", "value": "20002"}],
            [address(1, 1, "Jane", "Doe", "123 Oak Ave", "Purchase", "New York", 43, "10577", "512-555-1111")],
        ),
        customer(
            2,
            "roni_cost@example.com",
            "Veronica",
            "Costello",
            "2026-09-25 12:30:00",
            "2026-10-12 16:00:00",
            [],
            [
                address(
                    2,
                    2,
                    "Veronica",
                    "Costello",
                    "6146 Honey Bluff Parkway",
                    "Calder",
                    "Michigan",
                    33,
                    "49628-7978",
                    "(555) 229-3326",
                )
            ],
        ),
        customer(
            3,
            "buyer@csr.example.com",
            "Chris",
            "Rentals",
            "2026-10-02 08:00:00",
            "2026-10-02 08:00:00",
            [{"attribute_code": "erp_account_number", "value": "1008"}],
            [],
        ),
    ]
