"""Test both systems of a connection from the command line (exit status 1 when a side fails)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from connector.models import Connection
from sync.diagnostics import connection_test


class Command(BaseCommand):
    help = (
        "Get a token (when the auth needs one) and make one cheap authorised read on each side of a connection, "
        "then print OK or the exact problem per side. The result is audited (connection.tested)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the connection's slug")

    def handle(self, *args, **options):
        try:
            connection = Connection.objects.get(slug=options["slug"])
        except Connection.DoesNotExist:
            raise CommandError(f"No connection with the slug {options['slug']!r}.") from None
        result = connection_test(connection=connection, actor="system:test_connection")
        self.stdout.write(f"Connection {connection.slug} ({connection.name})")
        for side in result.sides:
            status = self.style.SUCCESS("OK    ") if side.ok else self.style.ERROR("FAILED")
            message = side.message.removeprefix("OK: ")
            self.stdout.write(f"  {side.system + ':':<10} {status}  {message}")
        if not result.ok:
            raise CommandError("The connection test failed.")
