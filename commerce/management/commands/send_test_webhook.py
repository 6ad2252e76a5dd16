"""python manage.py send_test_webhook SLUG --order N [--kind order|invoice|creditmemo] [--sku SKU[:QTY]] [--url URL]

Send one realistic, signed Commerce webhook to the connector, as Commerce would: the answer is printed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from commerce.samples import DEFAULT_LINES, KINDS, SampleWebhookError, parse_lines, sample_webhook_send
from connector.models import Connection


class Command(BaseCommand):
    help = (
        "Build a realistic Commerce order, invoice or credit memo webhook numbered N, sign it with the "
        "connection's active HMAC key (as Commerce does: HMAC-SHA256 of the raw body in the key's header) and POST "
        "it to the connection's webhook URL (CONNECTOR_PUBLIC_URL + /webhooks/commerce/<slug>/, or --url)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the connection's slug")
        parser.add_argument("--order", type=int, required=True, help="the order number (entity and increment id)")
        parser.add_argument(
            "--kind", choices=KINDS, default="order", help="order, or that order's invoice or credit memo"
        )
        parser.add_argument(
            "--sku",
            action="append",
            metavar="SKU[:QTY]",
            help=f"an order line (repeatable; default {' '.join(f'{s}:{q}' for s, q in DEFAULT_LINES)})",
        )
        parser.add_argument("--url", help="send here instead of the connection's webhook URL")

    def handle(self, *args, **options) -> None:
        if options["order"] <= 0:
            raise CommandError("--order must be a number above 0.")
        connection = Connection.objects.filter(slug=options["slug"]).first()
        if connection is None:
            raise CommandError(f"No connection has the slug {options['slug']!r}.")
        try:
            lines = parse_lines(options["sku"]) if options["sku"] else DEFAULT_LINES
            sent = sample_webhook_send(
                connection=connection, kind=options["kind"], number=options["order"], lines=lines, url=options["url"]
            )
        except SampleWebhookError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"POST {sent.url} ({sent.kind} {sent.number:09d}): {sent.status} {sent.answer}")
        if not 200 <= sent.status < 300:
            raise CommandError(f"The connector refused the webhook ({sent.status}).")
