"""python manage.py seed_demo [--fusion-url URL] [--commerce-url URL]: the demo connection and its mappings."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connector.connection_documents import ConnectionDocumentError
from mocks.demo import SLUG, demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo connection to the mock Fusion and Commerce (with an HMAC webhook key) and GL mappings that "
        "fit the mocks' accounts and items. Running it again changes nothing. Needs CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fusion-url", default="http://127.0.0.1:8801", help="the mock Fusion (mock_fusion)")
        parser.add_argument("--commerce-url", default="http://127.0.0.1:8802", help="the mock Commerce (mock_commerce)")

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
            self.stdout.write(f"Demo connection {SLUG}: already seeded, no changes.")
            return
        self.stdout.write(f"Demo connection {SLUG} {'created' if seeded.created else 'updated'}:")
        for line in seeded.changes:
            self.stdout.write(f"  {line}")
