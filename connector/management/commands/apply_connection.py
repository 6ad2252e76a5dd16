import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connector.connection_documents import ConnectionDocumentError, connection_apply


class Command(BaseCommand):
    help = (
        "Create or update a connection (by slug) from a JSON document; FILE or - for stdin. Secrets may be "
        'inline, {"env": "VAR"} or {"file": "/path"}; "***" keeps the stored secret. The whole document is '
        "validated before anything is written. See README.md, section Connections."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("file", help="the JSON document, or - to read it from stdin")

    def handle(self, *args, **options):
        source = options["file"]
        if source == "-":
            text = (options.get("stdin") or sys.stdin).read()
        else:
            try:
                text = Path(source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read {source}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
            ) from None
        try:
            result = connection_apply(document=document, actor="system:apply_connection")
        except ConnectionDocumentError as exc:
            raise CommandError("The document was refused; nothing was written:\n  " + "\n  ".join(exc.errors)) from None
        slug = result.connection.slug
        if not result.changes:
            self.stdout.write(f"Connection {slug}: no changes.")
            return
        verb = "created" if result.created else "updated"
        self.stdout.write(self.style.SUCCESS(f"Connection {slug} {verb}:"))
        for line in result.changes:
            self.stdout.write(f"  {line}")
