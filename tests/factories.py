"""Builders for test objects in the shapes the admin and apply_connection produce."""

from __future__ import annotations

import itertools
from typing import Any

from connector.models import Connection, WebhookKey

_seq = itertools.count(1)


def make_connection(**overrides: Any) -> Connection:
    n = next(_seq)
    values: dict[str, Any] = {
        "slug": f"shop-{n}",
        "name": f"Shop {n}",
        "fusion_base_url": "https://acme.fa.us2.oraclecloud.com",
        "fusion_auth": Connection.FusionAuth.OAUTH2,
        "fusion_token_url": "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token",
        "fusion_client_id": "fusion-client",
        "fusion_client_secret": "fusion-client-secret-value",
        "fusion_scope": "https://acme.fa.us2.oraclecloud.com:443urn:opc:resource:consumer::all",
        "business_unit": "Vision Operations",
        "transaction_source": "COMMERCE_WEB",
        "transaction_type": "Invoice",
        "payment_terms": "Immediate",
        "currency": "USD",
        "ledger_id": "300000046975971",
        "journal_source": "Commerce",
        "journal_category": "Sales",
        "commerce_deployment": Connection.Deployment.PAAS,
        "commerce_base_url": "https://shop.example.com",
        "commerce_store_code": "default",
        "commerce_consumer_key": "consumer-key",
        "commerce_consumer_secret": "consumer-secret-value",
        "commerce_access_token": "access-token-value",
        "commerce_access_token_secret": "access-token-secret-value",
    }
    values.update(overrides)
    connection = Connection(**values)
    connection.full_clean()
    connection.save()
    return connection


def add_hmac_key(connection: Connection, secret: str = "whsec-test", **overrides: Any) -> WebhookKey:
    values: dict[str, Any] = {
        "scheme": WebhookKey.Scheme.HMAC,
        "secret": secret,
        "header_name": "X-Commerce-Signature",
        "encoding": "hex",
    }
    values.update(overrides)
    return WebhookKey.objects.create(connection=connection, **values)
