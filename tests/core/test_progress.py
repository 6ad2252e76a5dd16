import io

from core.progress import CommandProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal_but_lines_still_printed():
    out = io.StringIO()
    with CommandProgress(out, "backfill demo") as progress:
        progress.advance(3, note="created 3")
        progress.print("a change worth a line\n")
    assert progress.count == 3
    assert out.getvalue() == "a change worth a line\n"


def test_quiet_on_a_terminal_shows_no_progress():
    out = Tty()
    with CommandProgress(out, "backfill demo", quiet=True) as progress:
        progress.advance(5)
    assert out.getvalue() == ""
    assert not progress.live


def test_live_on_a_terminal_shows_count_and_total():
    out = Tty()
    with CommandProgress(out, "reconcile demo", total=10) as progress:
        progress.advance(4, note="2 differences")
    text = out.getvalue()
    assert progress.live
    assert "reconcile demo" in text
    assert "4/10" in text
    assert "2 differences" in text
