"""python manage.py sync_from_fusion SLUG [--stream customers|items|gl] [--dry-run] [--full] [--quiet]

One run of the sync from Fusion now (every stream, or the one named), the same service the schedule runs. On a
terminal it shows a live progress line per stream (rich); with --quiet or when the output is not a terminal, only
what a dry run would change, the failures, and the counts at the end."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connector.models import Connection
from core.errors import ConnectorError
from sync.flows.fusion_runs import AlreadyRunning, Counts, NotConfigured, StopRun, fusion_sync_run
from sync.models import Stream

STREAMS = [str(s) for s in Stream]


def _counts_text(counts: Counts) -> str:
    return (
        f"read {counts.read}  written {counts.written}  unchanged {counts.unchanged}  failed {counts.failed}  "
        f"unmatched {counts.unmatched}"
    )


def _change_line(event: str, data: dict[str, Any], dry_run: bool) -> str | None:
    what = f"{data.get('kind', '')} {data.get('commerce_id') or ''}".strip()
    source = f"Fusion {data.get('label') or data.get('key')}"
    verb = {"written": "would update" if dry_run else "updated", "created": "would create" if dry_run else "created"}
    if event in verb:
        after, before = data.get("after") or {}, data.get("before") or {}
        changes = ", ".join(f"{code}: {before.get(code, '')!r} -> {value!r}" for code, value in after.items())
        return f"{verb[event]} {what} ({source})" + (f": {changes}" if changes else "")
    if event == "failed":
        return f"failed {what} ({source}): {data.get('error')}"
    if event == "missing":
        name = data.get("label") or data.get("key")
        return f"missing in Fusion: {data.get('kind')} {name} (reported, nothing deleted)"
    if event == "unmatched" and dry_run:
        return f"no Commerce match for {source} ({data.get('match')})"
    if event == "rule_skipped":
        return f"customer rule for customer {data.get('commerce_id')} left alone: {data.get('error')}"
    return None


class Command(BaseCommand):
    help = (
        "Bring Fusion's customers, items and GL assignments to Commerce now: one run of each stream (or the one "
        "named). --dry-run lists what would change and writes nothing; --full reads everything and compares with "
        "Commerce as it is now."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the connection's slug")
        parser.add_argument("--stream", choices=STREAMS, action="append", help="only this stream (repeatable)")
        parser.add_argument("--dry-run", action="store_true", help="list what would change; write nothing")
        parser.add_argument("--full", action="store_true", help="read everything, compare with Commerce as it is")
        parser.add_argument("--quiet", action="store_true", help="no progress display, only changes and counts")

    def handle(self, *args, **options):
        connection = Connection.objects.filter(slug=options["slug"]).first()
        if connection is None:
            raise CommandError(f"No connection has the slug {options['slug']!r}.")
        live = self.stdout.isatty() and not options["quiet"]
        console = Console(file=self.stdout._out, highlight=False) if live else None
        problems = []
        for stream in options["stream"] or STREAMS:
            problem = self._run(connection, stream, options, console)
            if problem:
                problems.append(f"{stream}: {problem}")
        if problems:
            raise CommandError("; ".join(problems))

    def _run(self, connection: Connection, stream: str, options: dict[str, Any], console: Console | None) -> str:
        dry_run, full = options["dry_run"], options["full"]
        title = f"{connection.slug} {stream}" + (" (dry run)" if dry_run else "") + (" (full)" if full else "")
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[counts]}"))
        with Progress(*columns, TimeElapsedColumn(), console=console, disable=console is None) as bar:
            task = bar.add_task(title, counts="starting")

            def progress(event: str, data: dict[str, Any]) -> None:
                line = _change_line(event, data, dry_run)
                if line:
                    (bar.console.print(line) if console is not None else self.stdout.write(line))
                bar.update(task, counts=_counts_text(data["counts"]))

            try:
                run = fusion_sync_run(
                    connection=connection,
                    stream=stream,
                    dry_run=dry_run,
                    full=full,
                    actor="command:sync_from_fusion",
                    progress=progress,
                )
            except (NotConfigured, AlreadyRunning) as exc:
                self.stdout.write(f"{title}: skipped: {exc}")
                return str(exc)
            except (ConnectorError, StopRun) as exc:
                self.stdout.write(f"{title}: failed: {exc}")
                return str(exc)
        status = "stopped at its time limit" if run.partial else "done"
        self.stdout.write(f"{title}: {status}: {run.counts.line()}")
        return ""
