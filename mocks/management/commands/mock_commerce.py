"""Run the mock Adobe Commerce on 127.0.0.1 for demos and end-to-end tests (never in production)."""

from __future__ import annotations

from functools import partial

from django.core.management.base import BaseCommand

from mocks.cli import add_fault_arguments, add_server_arguments, faults_from_options, serve_from_command
from mocks.commerce import CommerceFaults, MockCommerce


class Command(BaseCommand):
    help = (
        "Serve a mock Adobe Commerce: PaaS REST /rest/<store>/V1/... (OAuth 1.0a HMAC-SHA256) and SaaS REST "
        "/<tenant>/V1/... with the IMS token endpoint /ims/token/v3, in-memory sample data and fault injection. "
        "Control it at /__mock__/faults, /__mock__/state, /__mock__/reset; add orders with POST /__mock__/orders."
    )

    def add_arguments(self, parser):
        add_server_arguments(parser, port=8802)
        parser.add_argument("--consumer-key", default="mock-consumer-key")
        parser.add_argument("--consumer-secret", default="mock-consumer-secret")
        parser.add_argument("--access-token", default="mock-access-token")
        parser.add_argument("--access-token-secret", default="mock-access-token-secret")
        parser.add_argument("--client-id", default="mock-ims-client", help="SaaS IMS client id (also the x-api-key)")
        parser.add_argument("--client-secret", default="mock-ims-secret")
        parser.add_argument("--tenant", default="mocktenant", help="SaaS tenant id: URLs are /<tenant>/V1/...")
        parser.add_argument("--store-code", action="append", default=[], help="store view codes (default: default)")
        add_fault_arguments(parser, CommerceFaults)

    def handle(self, *args, **options):
        url = f"http://{options['host']}:{options['port']}"
        build = partial(
            MockCommerce,
            consumer_key=options["consumer_key"],
            consumer_secret=options["consumer_secret"],
            access_token=options["access_token"],
            access_token_secret=options["access_token_secret"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            tenant=options["tenant"],
            store_codes=tuple(options["store_code"]) or ("default",),
            seed=options["seed"],
            **faults_from_options(options, CommerceFaults),
        )
        banner = (
            f"Mock Commerce on {url}\n"
            f"  PaaS base URL: {url} (consumer key {options['consumer_key']})\n"
            f"  SaaS base URL: {url}/{options['tenant']}, "
            f"IMS token URL: {url}/ims/token/v3 (client id {options['client_id']})"
        )
        serve_from_command(self, build, host=options["host"], port=options["port"], banner=banner)
