"""python manage.py seed_demo [--fusion-url URL] [--commerce-url URL] [--send [--wait SECONDS]]

The demo connection and its mappings; with --send, the demo stream of signed documents to the running connector,
then (with --wait) how each one ended up."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from commerce.samples import SampleWebhookError
from connector.connection_documents import ConnectionDocumentError
from mocks.demo import (
    FIRST_NUMBER,
    SLUG,
    DemoDocument,
    demo_guide,
    demo_outcome,
    demo_seed,
    demo_send,
    demo_settled,
    demo_stream,
)


class Command(BaseCommand):
    help = (
        "Create the demo connection to the mock Fusion and Commerce (with an HMAC webhook key) and GL mappings that "
        "fit the mocks' accounts and items. Running it again changes nothing. Needs CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fusion-url", default="http://127.0.0.1:8801", help="the mock Fusion (mock_fusion)")
        parser.add_argument("--commerce-url", default="http://127.0.0.1:8802", help="the mock Commerce (mock_commerce)")
        parser.add_argument("--send", action="store_true", help="then send the demo stream of signed documents")
        parser.add_argument("--first", type=int, default=FIRST_NUMBER, help="number of the stream's first order")
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the stream to settle")

    def handle(self, *args, **options) -> None:
        if not settings.CONNECTOR_ALLOW_LOCAL_ENDPOINTS:
            raise CommandError(
                "Local endpoints are not allowed: set CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 for the bundled mocks."
            )
        try:
            seeded = demo_seed(fusion_url=options["fusion_url"], commerce_url=options["commerce_url"])
        except ConnectionDocumentError as exc:
            raise CommandError("The demo connection was refused:\n  " + "\n  ".join(exc.errors)) from exc
        except ValueError as exc:
            raise CommandError(f"The demo mappings were refused: {exc}") from exc
        if not seeded.changed:
            if not options["send"]:
                self.stdout.write(f"Demo connection {SLUG}: already seeded, no changes.")
        else:
            self.stdout.write(f"Demo connection {SLUG} {'created' if seeded.created else 'updated'}:")
            for line in seeded.changes:
                self.stdout.write(f"  {line}")
        if options["send"]:
            self._send(seeded.connection, options["first"], options["wait"])

    def _send(self, connection, first: int, wait: float) -> None:
        def sent(document: DemoDocument, answer) -> None:
            self.stdout.write(f"  {document.kind} {document.number:09d} ({document.what}): {answer.status}")

        self.stdout.write(f"Sending the demo stream to {connection.slug}, signed with its HMAC key:")
        try:
            demo_send(connection=connection, documents=demo_stream(first), sent=sent)
        except SampleWebhookError as exc:
            raise CommandError(str(exc)) from exc
        deadline = time.monotonic() + wait
        outcome = demo_outcome(connection=connection, first=first)
        while wait and not demo_settled(outcome) and time.monotonic() < deadline:
            time.sleep(1)
            outcome = demo_outcome(connection=connection, first=first)
        if wait:
            self.stdout.write("Where the documents are now:")
            for state, names in outcome.items():
                self.stdout.write(f"  {state}: {', '.join(names)}")
            self.stdout.write(demo_guide(outcome, first=first))
