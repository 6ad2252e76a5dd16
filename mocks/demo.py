"""The demo: a connection to the mock Fusion and Commerce servers with an HMAC webhook key, GL mappings that fit
the mocks' chart of accounts, customers and items, and a stream of signed Commerce documents in which one order
needs review for a missing product rule. Seeding is idempotent: run it again and nothing changes.

It lives with the mocks (installed only with CONNECTOR_MOCKS=1) because it only makes sense against them; it
drives the product through its own services (connection_apply, rules_import, the webhook door), as a user would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from commerce.samples import (
    GUEST,
    JANE,
    SampleWebhookError,
    SentWebhook,
    sample_creditmemo,
    sample_envelope,
    sample_invoice,
    sample_order,
    sample_webhook_send,
)
from connector.connection_documents import connection_apply
from connector.models import Connection, Record
from mappings.imports import rules_import

SLUG = "demo"
ACTOR = "command:seed_demo"
# The webhook key of a demo against mock systems on this machine: not a secret worth hiding, and fixed so that
# seeding again changes nothing.
WEBHOOK_SECRET = "demo-webhook-secret-for-the-mock-systems"  # noqa: S105
MISSING_SKU = "SKU-DOCK-USB4"  # the one SKU the demo mappings leave out
FIRST_NUMBER = 1001

# The mock systems' credentials (mocks/fusion/app.py, mocks/commerce/app.py defaults).
FUSION_CLIENT = ("mock-fusion-client", "mock-fusion-secret", "urn:opc:resource:consumer::all")
COMMERCE_PAAS = ("mock-consumer-key", "mock-consumer-secret", "mock-access-token", "mock-access-token-secret")

# Accounts of the mock Fusion's chart (mocks/fusion/seed.py): Company-Department-Account-SubAccount-Product.
MAPPINGS_CSV = f"""kind,connection,segment_names,account_class,combination,match_type,match_value,\
bill_to_customer_number,bill_to_site,item_number,segments,notes
layout,{SLUG},"Company, Department, Account, SubAccount, Product",,,,,,,,,Chart of the mock Fusion
template,{SLUG},,revenue,01-000-4110-0000-000,,,,,,,Product revenue
template,{SLUG},,receivable,01-000-1210-0000-000,,,,,,,Trade receivables
template,{SLUG},,freight,01-000-4520-0000-000,,,,,,,Freight
template,{SLUG},,tax,01-000-2210-0000-000,,,,,,,Sales tax payable
template,{SLUG},,discount,01-000-4190-0000-000,,,,,,,Discounts
template,{SLUG},,rounding,01-000-4190-0000-000,,,,,,,Rounding
template,{SLUG},,clearing,01-000-1290-0000-000,,,,,,,Commerce clearing
customer,{SLUG},,,,default,,20001,WEB-US,,,Web store customers
customer,{SLUG},,,,email,jdoe@example.com,20002,Purchase NY,,,Key account
product,{SLUG},,,,sku,WS12-M-Orange,,,WS12-M-Orange,,Apparel
product,{SLUG},,,,sku,MH01-XS-Black,,,MH01-XS-Black,,Apparel
product,{SLUG},,,,sku,24-MB01,,,24-MB01,,Bags
product,{SLUG},,,,sku,SKU-LAPTOP-15,,,SKU-LAPTOP-15,Department=110,Laptops: web department revenue
"""
TAX_CSV = f"""kind,connection,match_type,match_value,tax_regime_code,tax_rate_code,tax_classification_code,notes
tax,{SLUG},default,,US SALES AND USE TAX,STD,US_STD,Any US sales tax at the standard rate
"""


@dataclass
class DemoSeeded:
    connection: Connection
    created: bool
    changes: list[str] = field(default_factory=list)  # what changed, one line each; empty: nothing

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def demo_connection_document(*, fusion_url: str, commerce_url: str) -> dict[str, Any]:
    client_id, client_secret, scope = FUSION_CLIENT
    key, secret, token, token_secret = COMMERCE_PAAS
    fusion_url, commerce_url = fusion_url.rstrip("/"), commerce_url.rstrip("/")
    return {
        "slug": SLUG,
        "name": "Demo (mock systems)",
        "enabled": True,
        "fusion_base_url": fusion_url,
        "fusion_auth": "oauth2",
        "fusion_token_url": f"{fusion_url}/oauth2/v1/token",
        "fusion_client_id": client_id,
        "fusion_client_secret": client_secret,
        "fusion_scope": scope,
        "business_unit": "Vision Operations",
        "transaction_source": "COMMERCE_WEB",
        "currency": "USD",
        "journal_mode": "none",
        "invoice_event": "order",
        "commerce_deployment": "paas",
        "commerce_base_url": commerce_url,
        "commerce_consumer_key": key,
        "commerce_consumer_secret": secret,
        "commerce_access_token": token,
        "commerce_access_token_secret": token_secret,
        "webhook_keys": [
            {
                "scheme": "hmac",
                "label": "demo",
                "secret": WEBHOOK_SECRET,
                "header_name": "X-Commerce-Signature",
                "encoding": "hex",
                "prefix": "sha256=",
            }
        ],
    }


def demo_seed(*, fusion_url: str, commerce_url: str, actor: Any = ACTOR) -> DemoSeeded:
    """Create (or bring back to the demo's values) the demo connection and its mappings. Raises ValueError
    naming every problem when the product refuses them."""
    applied = connection_apply(
        document=demo_connection_document(fusion_url=fusion_url, commerce_url=commerce_url), actor=actor
    )
    if applied.created:
        changes = [f"connection {SLUG}: Fusion {fusion_url}, Commerce {commerce_url}, HMAC webhook key 'demo'"]
    else:
        changes = [f"connection {SLUG}: {line}" for line in applied.changes]
    for content in (MAPPINGS_CSV, TAX_CSV):
        report = rules_import(content=content.encode(), file_format="csv", actor=actor, connection=applied.connection)
        if not report.ok:
            raise ValueError("; ".join(str(issue) for issue in report.issues))
        for kind, counts in report.counts.items():
            if counts.get("new") or counts.get("update"):
                changes.append(f"{kind} rules: {counts.get('new', 0)} new, {counts.get('update', 0)} changed")
    return DemoSeeded(connection=applied.connection, created=applied.created, changes=changes)


@dataclass(frozen=True)
class DemoDocument:
    kind: str
    number: int
    body: bytes
    what: str  # one line for the person watching
    entity: dict[str, Any] = field(default_factory=dict)  # the document as Commerce holds it


def demo_stream(first: int = FIRST_NUMBER) -> list[DemoDocument]:
    """Five orders (the fourth has the SKU no rule maps), the first order's invoice (linked to its AR invoice
    under the order policy) and a credit memo refunding the laptop of the second."""
    orders = [
        (sample_order(first, lines=(("WS12-M-Orange", 1), ("24-MB01", 1)), buyer=JANE), "Jane Doe, tee and bag"),
        (sample_order(first + 1, lines=(("SKU-LAPTOP-15", 1),), buyer=GUEST), "guest, laptop"),
        (sample_order(first + 2, lines=(("MH01-XS-Black", 2),), buyer=GUEST), "guest, two hoodies"),
        (
            sample_order(first + 3, lines=((MISSING_SKU, 1), ("WS12-M-Orange", 1)), buyer=JANE),
            f"Jane Doe, docking station ({MISSING_SKU}: no product rule, needs review)",
        ),
        (sample_order(first + 4, lines=(("24-MB01", 3),), buyer=GUEST), "guest, three bags"),
    ]
    stream = [DemoDocument("order", o["entity_id"], sample_envelope("order", o), what, o) for o, what in orders]
    jane, laptop = orders[0][0], orders[1][0]
    invoice = sample_invoice(jane, first)
    memo = sample_creditmemo(laptop, first + 1, skus=["SKU-LAPTOP-15"])
    stream.append(
        DemoDocument("invoice", first, sample_envelope("invoice", invoice), f"invoice of order {first}", invoice)
    )
    stream.append(
        DemoDocument("creditmemo", first + 1, sample_envelope("creditmemo", memo), f"refund of order {first + 1}", memo)
    )
    return stream


def demo_send(
    *,
    connection: Connection,
    documents: list[DemoDocument],
    url: str | None = None,
    session: Any = None,
    sent: Callable[[DemoDocument, SentWebhook], None] | None = None,
) -> list[SentWebhook]:
    """Place each document in the mock Commerce (so that the backfill and reconciliation find it there, as they
    would in a real store), then sign and POST its webhook to the connection's webhook address, as Commerce
    would."""
    answers = []
    for document in documents:
        demo_place_in_commerce(connection=connection, document=document)
        answer = sample_webhook_send(
            connection=connection,
            kind=document.kind,
            number=document.number,
            body=document.body,
            url=url,
            session=session,
        )
        answers.append(answer)
        if sent is not None:
            sent(document, answer)
    return answers


def demo_place_in_commerce(*, connection: Connection, document: DemoDocument) -> None:
    """Add (or replace) the document in the mock Commerce through its control route."""
    base = urlsplit(connection.commerce_base_url)
    url = f"{base.scheme}://{base.netloc}/__mock__/{document.kind}s"
    try:
        answer = requests.post(url, json=document.entity, timeout=10)
    except requests.RequestException as exc:
        raise SampleWebhookError(f"The mock Commerce at {url} did not answer: {exc}") from exc
    if not answer.ok:
        raise SampleWebhookError(f"The mock Commerce refused {document.kind} {document.number}: {answer.text[:200]}")


def demo_outcome(*, connection: Connection, first: int = FIRST_NUMBER) -> dict[str, list[str]]:
    """The demo stream's records by state ("posted" -> ["order 000001001", ...]); documents not read yet are
    under "waiting"."""
    numbers = {f"{d.kind} {d.number:09d}" for d in demo_stream(first)}
    found: dict[str, list[str]] = {}
    for record in Record.objects.filter(connection=connection).order_by("pk"):
        name = f"{record.kind} {record.commerce_number}"
        if name in numbers:
            found.setdefault(record.get_state_display().lower(), []).append(name)
            numbers.discard(name)
    if numbers:
        found["waiting"] = sorted(numbers)
    return found


def demo_settled(outcome: dict[str, list[str]]) -> bool:
    """Every document of the stream has reached a state a worker will not move on its own."""
    settled = {str(s.label).lower() for s in Record.State if s not in Record.ACTIVE_STATES}
    return all(state in settled for state in outcome)


def demo_guide(outcome: dict[str, list[str]], *, first: int = FIRST_NUMBER) -> str:
    """What to do next in the admin, given where the stream's documents are."""
    parked = f"order {first + 3:09d}"
    if parked in outcome.get("needs review", []):
        return f"""
What to do: Connector > Records, needing review first: {parked} is parked: no product rule matches {MISSING_SKU}.
  1. Mappings > Product rules > Add: connection demo, match type "SKU", match value {MISSING_SKU},
     item number {MISSING_SKU}. Save.
  2. Connector > Records > tick {parked}, action "Replay" (or Replay on its page).
  3. Within seconds it is Posted: its page shows the AR invoice number and the whole timeline.
The other orders are posted, the invoice is linked to its order's AR invoice, the refund is a credit memo."""
    return f"""
{parked} is not parked: the product rule for {MISSING_SKU} exists already (added on an earlier run).
To walk through review again: delete that rule (Mappings > Product rules), send a new order with the SKU
(send_test_webhook demo --order 3001 --sku {MISSING_SKU}), then add the rule back and replay it."""
