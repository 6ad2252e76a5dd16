"""python manage.py backfill SLUG [--since ISO-DATE] [--quiet]: a manual catch-up of missed Commerce documents.

On a terminal a live line shows the documents read, the rate and what they made; with --quiet or when not on a
terminal only the summary at the end is printed."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from commerce.backfill import BackfillResult, backfill_run
from connector.models import Connection
from core.errors import ConnectorError
from core.progress import CommandProgress


def _since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since {value!r} is not an ISO date such as 2026-11-01 or 2026-11-01T08:00:00Z.")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Create records for Commerce orders, invoices and credit memos changed since a date (default: the "
        "connection's watermark minus the overlap) that no webhook brought. Known documents are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The connection's slug")
        parser.add_argument("--since", help="ISO date or date-time (UTC unless it has an offset)")
        parser.add_argument("--quiet", action="store_true", help="no progress line, only the summary")

    def handle(self, *args, **options):
        connection = Connection.objects.filter(slug=options["slug"]).first()
        if connection is None:
            raise CommandError(f"No connection has the slug {options['slug']!r}.")
        since = _since(options["since"]) if options.get("since") else None
        with CommandProgress(self.stdout, f"backfill {connection.slug}", quiet=options["quiet"]) as bar:

            def progress(kind: str, documents: int, so_far: BackfillResult) -> None:
                note = f"{kind}s: {so_far.created} new, {so_far.known} known, {so_far.unreadable} unreadable"
                bar.advance(documents, note=note)

            try:
                result = backfill_run(connection=connection, since=since, actor="command:backfill", progress=progress)
            except ConnectorError as exc:
                raise CommandError(f"Backfill failed: {exc}")
        seen = ", ".join(f"{count} {kind}s" for kind, count in sorted(result.seen.items())) or "nothing"
        self.stdout.write(
            f"Since {result.since:%Y-%m-%d %H:%M:%S} UTC: saw {seen}; created {result.created}, "
            f"already known {result.known}, unreadable {result.unreadable}."
        )
        if not result.complete and result.resume_from is not None:
            self.stdout.write(
                f"Stopped at the run's limit after {result.pages} pages; everything up to "
                f"{result.resume_from:%Y-%m-%d %H:%M:%S} UTC is read. Carry on with --since "
                f"{result.resume_from:%Y-%m-%dT%H:%M:%S}Z (the scheduled backfill carries on from the watermark)."
            )
