"""Progress for long management commands: a live line on a terminal (count, rate, time left when the total is
known), nothing while running when --quiet or when the output is not a terminal; the command prints its own
summary at the end either way.

    with CommandProgress(self.stdout, "backfill shop-eu", total=None, quiet=options["quiet"]) as progress:
        for page in pages:
            ...
            progress.advance(len(page), note=f"created {created}")
"""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _stream(out: Any) -> IO[str]:
    """Django's OutputWrapper keeps the real stream in `_out`; anything else is used as it is."""
    return getattr(out, "_out", out)


def is_live(out: Any, quiet: bool) -> bool:
    stream = _stream(out)
    return not quiet and hasattr(stream, "isatty") and stream.isatty()


class CommandProgress:
    """A rich progress line, or nothing. `advance(n)` counts items; `note` is free text shown beside them."""

    def __init__(self, out: Any, title: str, *, total: int | None = None, quiet: bool = False) -> None:
        self.live = is_live(out, quiet)
        self.console = Console(file=_stream(out), highlight=False) if self.live else None
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        else:
            columns += [TextColumn("{task.completed:,.0f} done")]
        columns += [TextColumn("{task.fields[speed_text]}"), TextColumn("{task.fields[note]}"), TimeElapsedColumn()]
        self._progress = Progress(*columns, console=self.console, disable=not self.live)
        self._task: TaskID | None = None
        self._title, self._total, self._out = title, total, out
        self.count = 0

    def __enter__(self) -> CommandProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task(self._title, total=self._total, note="", speed_text="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def advance(self, count: int = 1, *, note: str = "") -> None:
        self.count += count
        if self._task is None or not self.live:
            return
        self._progress.advance(self._task, count)
        speed = self._progress.tasks[0].speed
        self._progress.update(self._task, note=note, speed_text=f"{speed:,.0f}/s" if speed else "")

    def set_total(self, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=total)

    def print(self, line: str) -> None:
        """A line above the live display (or straight to the output when there is none)."""
        if self.console is not None:
            self._progress.console.print(line, markup=False)
        else:
            self._out.write(line)
