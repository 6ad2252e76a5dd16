"""python manage.py reconcile SLUG --from DATE --to DATE [--quiet] [--csv FILE]

Reconcile one connection's Commerce documents against Fusion for a range of days (the connection's time zone),
the same service the admin and the daily schedule run. Prints the counts, the totals by currency and every
difference; exits 1 when there are differences (or the run failed), 0 when everything matches."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connector.documents import format_money
from connector.models import Connection
from core.progress import CommandProgress
from sync.flows.reconciliation import ReconciliationInputError, reconciliation_execute, reconciliation_start
from sync.flows.reconciliation_csv import difference_line, differences_csv
from sync.models import ReconciliationRun


def _date(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag} {value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Did every Commerce sale reach Fusion, for the right amount? Compares the Commerce documents the "
        "connection posts with Fusion's AR invoices and credit memos for a range of days; exits 1 when there are "
        "differences."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the connection's slug")
        parser.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD (included)")
        parser.add_argument("--quiet", action="store_true", help="no progress line")
        parser.add_argument("--csv", dest="csv_file", help="also write the differences to this CSV file")

    def handle(self, *args: Any, **options: Any) -> None:
        connection = Connection.objects.filter(slug=options["slug"]).first()
        if connection is None:
            raise CommandError(f"No connection with the slug {options['slug']!r}.")
        date_from, date_to = _date(options["date_from"], "--from"), _date(options["date_to"], "--to")
        try:
            run = reconciliation_start(
                connection=connection, date_from=date_from, date_to=date_to, actor="system:reconcile-command"
            )
        except ReconciliationInputError as exc:
            raise CommandError(str(exc)) from None
        title = f"reconcile {connection.slug} {date_from}..{date_to}"
        with CommandProgress(self.stdout, title, quiet=options["quiet"]) as progress:
            run = reconciliation_execute(run=run, progress=progress.advance)
        self._summary(run)
        if options["csv_file"]:
            Path(options["csv_file"]).write_text(differences_csv(run), encoding="utf-8")
            self.stdout.write(f"Differences written to {options['csv_file']}")
        if run.status != ReconciliationRun.Status.OK:
            sys.exit(1)

    def _summary(self, run: ReconciliationRun) -> None:
        out = self.stdout
        if run.status == ReconciliationRun.Status.FAILED:
            out.write(f"Reconciliation failed: {run.error}")
            return
        out.write(
            f"Commerce {run.commerce_count} documents, Fusion {run.fusion_count}, matched {run.matched_count}, "
            f"differences {run.difference_count}"
        )
        totals: dict[str, list[Any]] = {}
        for row in run.daily:
            both = totals.setdefault(row["currency"], [0, 0])
            both[0] += Decimal(row["commerce_amount"])
            both[1] += Decimal(row["fusion_amount"])
        for currency, (commerce, fusion) in sorted(totals.items()):
            out.write(
                f"  {currency}: Commerce {format_money(commerce, currency)}, Fusion {format_money(fusion, currency)}"
            )
        for difference in run.differences.all():
            out.write("  " + difference_line(difference))
        if run.status == ReconciliationRun.Status.OK:
            out.write("Everything matches.")
