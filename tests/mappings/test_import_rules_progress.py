"""import_rules on a file of many rows: it is checked in steps, a live line on a terminal counts them against the
file's rows, --quiet or an output that is not a terminal prints only the summary, and a bad row is still
reported with its own line whatever step it falls in."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from mappings import imports
from mappings.imports import rules_import
from mappings.models import ProductRule
from tests.factories import make_connection

pytestmark = pytest.mark.django_db
HEADER = "kind,connection,segment_names,account_class,combination,match_type,match_value,item_number\n"
LAYOUT = ',,"Company, Department, Account, SubAccount, Product",,,,,\n'


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _csv(products: int, *, bad: int | None = None) -> bytes:
    rows = ["layout" + LAYOUT, "template,,,revenue,01-000-4110-0000-000,,,\n"]
    for n in range(products):
        match_type = "nonsense" if n == bad else "sku"
        rows.append(f"product,,,,,{match_type},SKU-{n:04d},ITEM-{n:04d}\n")
    return (HEADER + "".join(rows)).encode()


@pytest.fixture
def small_steps(monkeypatch):
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 5)


@pytest.mark.usefixtures("small_steps")
def test_every_step_is_reported_against_the_rows_of_the_file():
    connection = make_connection()
    steps = []
    report = rules_import(
        content=_csv(12), file_format="csv", actor="test", connection=connection, progress=lambda *a: steps.append(a)
    )
    assert report.ok, report.issues
    assert steps == [("layout", 1, 14), ("template", 1, 14), ("product", 5, 14), ("product", 5, 14), ("product", 2, 14)]
    assert ProductRule.objects.filter(connection=connection).count() == 12


@pytest.mark.usefixtures("small_steps")
def test_a_bad_row_in_a_later_step_is_reported_with_its_own_line_and_nothing_is_saved():
    connection = make_connection()
    report = rules_import(content=_csv(12, bad=8), file_format="csv", actor="test", connection=connection)
    assert [(issue.kind, issue.where) for issue in report.issues] == [("product", "line 12")]  # header, 2 rows, 9th
    assert not ProductRule.objects.exists()


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.csv"
    path.write_bytes(_csv(12))
    return str(path)


@pytest.mark.usefixtures("small_steps")
def test_on_a_terminal_a_live_line_counts_the_rows_then_the_summary(rules_file):
    connection = make_connection()
    out = Tty()
    call_command("import_rules", connection.slug, rules_file, stdout=out)
    text = out.getvalue()
    assert f"import_rules {connection.slug}" in text and "14/14" in text
    assert text.splitlines()[-1].endswith(
        "Imported: layout: 1 new, 0 changed, 0 unchanged; template: 1 new, "
        "0 changed, 0 unchanged; product: 12 new, 0 changed, 0 unchanged"
    )


@pytest.mark.parametrize("terminal", [False, True])
def test_quiet_or_not_a_terminal_prints_only_the_summary(rules_file, terminal):
    connection = make_connection()
    out = Tty() if terminal else io.StringIO()
    call_command("import_rules", connection.slug, rules_file, *(["--quiet"] if terminal else []), stdout=out)
    assert out.getvalue().splitlines() == [
        "Imported: layout: 1 new, 0 changed, 0 unchanged; template: 1 new, 0 changed, 0 unchanged; "
        "product: 12 new, 0 changed, 0 unchanged"
    ]


def test_a_refused_file_still_says_why_and_saves_nothing(tmp_path):
    connection = make_connection()
    path = tmp_path / "bad.csv"
    path.write_bytes(_csv(3, bad=1))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_rules", connection.slug, str(path), stdout=io.StringIO(), stderr=err)
    assert "line 5 (product)" in err.getvalue()
    assert not ProductRule.objects.exists()
