"""Run the mock Fusion on 127.0.0.1 for demos and end-to-end tests (never in production)."""

from __future__ import annotations

from functools import partial

from django.core.management.base import BaseCommand, CommandError

from mocks.cli import add_fault_arguments, add_server_arguments, faults_from_options, serve_from_command
from mocks.fusion import FusionFaults, MockFusion


class Command(BaseCommand):
    help = (
        "Serve a mock Oracle Fusion (token endpoint /oauth2/v1/token and /fscmRestApi/resources/11.13.18.05/...) "
        "with in-memory data and fault injection. Control it at /__mock__/faults, /__mock__/state, /__mock__/reset."
    )

    def add_arguments(self, parser):
        add_server_arguments(parser, port=8801)
        parser.add_argument("--client-id", default="mock-fusion-client")
        parser.add_argument("--client-secret", default="mock-fusion-secret")
        parser.add_argument("--scope", default="urn:opc:resource:consumer::all", help="the scope tokens require")
        parser.add_argument(
            "--basic-user", action="append", default=[], metavar="USER:PASSWORD", help="accept Basic auth for this user"
        )
        add_fault_arguments(parser, FusionFaults)

    def handle(self, *args, **options):
        users = {}
        for pair in options["basic_user"]:
            user, sep, password = pair.partition(":")
            if not sep or not user:
                raise CommandError("--basic-user takes USER:PASSWORD")
            users[user] = password

        url = f"http://{options['host']}:{options['port']}"
        build = partial(
            MockFusion,
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            scope=options["scope"],
            basic_users=users,
            seed=options["seed"],
            **faults_from_options(options, FusionFaults),
        )
        banner = (
            f"Mock Fusion on {url}\n"
            f"  token URL: {url}/oauth2/v1/token (client id {options['client_id']}, scope {options['scope']})\n"
            f"  base URL:  {url}"
        )
        serve_from_command(self, build, host=options["host"], port=options["port"], banner=banner)
