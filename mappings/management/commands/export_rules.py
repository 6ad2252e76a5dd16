"""python manage.py export_rules SLUG [--format csv|xlsx] [--kind KIND] [-o FILE]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connector.models import Connection
from mappings.imports import FORMATS, KINDS, rules_export


class Command(BaseCommand):
    help = (
        "Export one connection's mapping rules as CSV (one file, a kind column) or XLSX (one sheet per kind). "
        "import_rules takes the file back unchanged."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The connection's slug")
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--kind", choices=KINDS, action="append", help="Only this kind (repeatable)")
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output")

    def handle(self, *args, slug: str, format: str, kind: list[str] | None, output: str | None, **options):
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise CommandError(f"There is no connection {slug!r}.")
        content = rules_export(connection=connection, file_format=format, kinds=tuple(kind or KINDS))
        if output:
            Path(output).write_bytes(content)
            self.stderr.write(f"Wrote {output}")
        elif format == "xlsx":
            stream = getattr(self.stdout, "_out", None)
            buffer = getattr(stream, "buffer", None)
            if stream is None or buffer is None or stream.isatty():
                raise CommandError("XLSX is binary: redirect standard output to a file, or give -o FILE.")
            buffer.write(content)
            buffer.flush()
        else:
            self.stdout.write(content.decode("utf-8"), ending="")
