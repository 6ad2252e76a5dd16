"""Run the mock Fusion on 127.0.0.1 for demos and end-to-end tests (never in production)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from fusion.mock_server import FusionFaults, MockFusion, add_fault_arguments, faults_from_options


class Command(BaseCommand):
    help = (
        "Serve a mock Oracle Fusion (token endpoint /oauth2/v1/token and /fscmRestApi/resources/11.13.18.05/...) "
        "with in-memory data and fault injection. Control it at /__mock__/faults, /__mock__/state, /__mock__/reset."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8801)
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
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
        try:
            mock = MockFusion(
                client_id=options["client_id"],
                client_secret=options["client_secret"],
                scope=options["scope"],
                basic_users=users,
                seed=options["seed"],
                **faults_from_options(options, FusionFaults),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        host, port = options["host"], options["port"]
        self.stdout.write(
            f"Mock Fusion on http://{host}:{port}\n"
            f"  token URL: http://{host}:{port}/oauth2/v1/token (client id {options['client_id']}, "
            f"scope {options['scope']})\n"
            f"  base URL:  http://{host}:{port}\n"
            "  (the connector needs CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 to call it). Ctrl-C stops it."
        )
        try:
            mock.serve_forever(host, port)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
