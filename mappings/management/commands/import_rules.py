"""python manage.py import_rules SLUG FILE [--dry-run] [--kind KIND] [--format csv|xlsx] [--quiet]

On a terminal a live line shows the rows checked, the rate and the time left; with --quiet or when not on a
terminal only the problems and the summary are printed."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connector.models import Connection
from core.progress import CommandProgress
from mappings.imports import FORMATS, KINDS, rules_import


class Command(BaseCommand):
    help = (
        "Import mapping rules for one connection from a CSV or XLSX file (the export_rules format). All rows "
        "or none: any row error is reported with its line and nothing is saved."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The connection's slug")
        parser.add_argument("file", help="A .csv or .xlsx file")
        parser.add_argument("--dry-run", action="store_true", help="Check every row, save nothing")
        parser.add_argument("--kind", choices=KINDS, help="Import only rows of this kind")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file name's extension")
        parser.add_argument("--quiet", action="store_true", help="No progress line, only problems and the summary")

    def handle(
        self, *args, slug: str, file: str, dry_run: bool, kind: str | None, format: str | None, quiet: bool, **options
    ):
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise CommandError(f"There is no connection {slug!r}.")
        path = Path(file)
        file_format = format or path.suffix.lower().lstrip(".")
        if file_format not in FORMATS:
            raise CommandError(f"Cannot tell the format of {file}: name it .csv or .xlsx, or pass --format.")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        with ExitStack() as stack:
            bars: list[CommandProgress] = []

            def progress(rule_kind: str, rows: int, total: int) -> None:
                # Started on the first step, when the file's row count (hence the time left) is known.
                if not bars:
                    bars.append(stack.enter_context(CommandProgress(self.stdout, title, total=total, quiet=quiet)))
                bars[0].advance(rows, note=rule_kind)

            title = f"import_rules {slug}" + (" (dry run)" if dry_run else "")
            try:
                report = rules_import(
                    content=content,
                    file_format=file_format,
                    actor="command:import_rules",
                    connection=connection,
                    kind=kind,
                    dry_run=dry_run,
                    progress=progress,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        for issue in report.issues:
            self.stderr.write(str(issue))
        if not report.ok:
            raise CommandError(f"{len(report.issues)} row(s) have errors; nothing was imported.")
        verb = "Checked (dry run, nothing saved)" if dry_run else "Imported"
        self.stdout.write(f"{verb}: {report.summary()}")
