import csv
import io
from datetime import date

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from mappings.imports import rules_export, rules_import
from mappings.models import AccountTemplate, CustomerRule, ProductRule, SegmentLayout, StoreRule, TaxRule
from tests.factories import make_connection
from tests.mappings.helpers import mapped_connection

pytestmark = pytest.mark.django_db

ALL_MODELS = (SegmentLayout, AccountTemplate, StoreRule, CustomerRule, ProductRule, TaxRule)


def _state(connection):
    """Every rule of the connection, as comparable values (ids and timestamps left out)."""
    return {
        model.KIND: sorted(
            (
                tuple(sorted((k, str(v)) for k, v in rule.audit_values().items()))
                for rule in model.objects.filter(connection=connection)
            ),
        )
        for model in ALL_MODELS
    }


def _stamps(connection):
    return {(m.KIND, r.pk): r.updated_at for m in ALL_MODELS for r in m.objects.filter(connection=connection)}


def _rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def _csv(rows: list[dict]) -> bytes:
    headers = list(dict.fromkeys(h for row in rows for h in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=headers)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(file_format):
    connection = mapped_connection()
    before, stamps, events = _state(connection), _stamps(connection), AuditEvent.objects.count()
    content = rules_export(connection=connection, file_format=file_format)
    report = rules_import(content=content, file_format=file_format, actor="test", connection=connection)
    assert report.ok and report.applied, report.issues
    assert all(set(counts) == {"skip"} for counts in report.counts.values())
    assert sum(c["skip"] for c in report.counts.values()) == 14
    assert _state(connection) == before
    assert _stamps(connection) == stamps
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_rebuilds_the_same_rules_after_they_are_gone(file_format):
    connection = mapped_connection()
    before = _state(connection)
    content = rules_export(connection=connection, file_format=file_format)
    for model in reversed(ALL_MODELS):
        model.objects.filter(connection=connection).delete()
    report = rules_import(content=content, file_format=file_format, actor="test", connection=connection)
    assert report.ok, report.issues
    assert report.counts["product"] == {"new": 2}
    assert _state(connection) == before
    created = AuditEvent.objects.filter(action__endswith=".created", actor="test")
    assert created.count() == 14
    assert {e.data["via"] for e in created} == {"import"}


def test_csv_format_is_one_file_with_a_kind_column_and_readable_values():
    connection = mapped_connection()
    rows = _rows(rules_export(connection=connection))
    assert list(rows[0])[:2] == ["kind", "connection"]
    assert list(rows[0])[-4:] == ["effective_from", "effective_to", "enabled", "notes"]
    assert [r["kind"] for r in rows] == (
        ["layout"] + ["template"] * 7 + ["store"] + ["customer"] * 2 + ["product"] * 2 + ["tax"]
    )
    laptop = next(r for r in rows if r["match_value"] == "LAP-15")
    assert laptop["segments"] == "account=4110; product=0015"  # layout order
    assert laptop["effective_from"] == "2026-01-01" and laptop["enabled"] == "yes"
    assert rows[0]["winners"] == "account=product; channel=customer"
    only = _rows(rules_export(connection=connection, kinds=("customer",)))
    assert {r["kind"] for r in only} == {"customer"}
    assert "segment_names" not in only[0]


def test_a_row_error_is_reported_with_its_line_and_nothing_is_imported():
    connection = mapped_connection()
    before, events = _state(connection), AuditEvent.objects.count()
    rows = _rows(rules_export(connection=connection))
    for row in rows:
        if row["kind"] == "customer" and row["match_type"] == "default":
            row["bill_to_customer_number"] = "WEB-2000"  # a valid change ...
    rows.append(
        {
            "kind": "product",
            "connection": connection.slug,
            "match_type": "sku",
            "match_value": "NEW-1",
            "segments": "account=4300",
        }
    )  # ... a valid new row ...
    rows.append(
        {
            "kind": "product",
            "connection": connection.slug,
            "match_type": "sku_pattern",
            "match_value": "CHAIR",
            "segments": "acount=1",
        }
    )  # ... and a bad one
    rows.append({"kind": "gadget", "connection": connection.slug})
    report = rules_import(content=_csv(rows), file_format="csv", actor="test", connection=connection)
    assert not report.ok and not report.applied
    messages = {issue.where: " ".join(issue.messages) for issue in report.issues}
    assert set(messages) == {"line 17", "line 18"}
    assert "needs a wildcard" in messages["line 17"]
    assert "'acount' is not a segment" in messages["line 17"]
    assert "kind column must be one of" in messages["line 18"]
    assert _state(connection) == before
    assert AuditEvent.objects.count() == events
    assert not ProductRule.objects.filter(match_value="NEW-1").exists()


def test_rows_are_checked_against_rows_earlier_in_the_same_file():
    connection = make_connection()
    rows = [
        {"kind": "customer", "match_type": "default", "bill_to_customer_number": "1", "segments": "channel=20"},
        {"kind": "layout", "segment_names": "company, account, channel", "delimiter": "-"},
        {"kind": "template", "account_class": "revenue", "combination": "01-4000-00"},
    ]
    report = rules_import(content=_csv(rows), file_format="csv", actor="test", connection=connection)
    assert report.ok, report.issues
    rows[2]["combination"] = "01-4000"  # two segments for a three-segment layout
    other = make_connection()
    report = rules_import(content=_csv(rows), file_format="csv", actor="test", connection=other)
    assert [i.where for i in report.issues] == ["line 4"]
    assert not SegmentLayout.objects.filter(connection=other).exists()


def test_a_changed_row_updates_the_rule_and_audits_before_and_after():
    connection = mapped_connection()
    rows = _rows(rules_export(connection=connection))
    laptop = next(r for r in rows if r["match_value"] == "LAP-15")
    laptop["segments"] = "account=4120; product=0015"
    report = rules_import(content=_csv(rows), file_format="csv", actor="importer", connection=connection)
    assert report.ok and report.counts["product"] == {"update": 1, "skip": 1}
    assert ProductRule.objects.get(match_value="LAP-15").segments == {"account": "4120", "product": "0015"}
    event = AuditEvent.objects.get(action="mappings.product.updated")
    assert event.actor == "importer" and event.data["via"] == "import"
    assert event.data["before"]["segments"]["account"] == "4110"
    assert event.data["after"]["segments"]["account"] == "4120"


def test_dry_run_reports_what_would_change_and_saves_nothing():
    connection = mapped_connection()
    rows = _rows(rules_export(connection=connection))
    rows.append(
        {"kind": "customer", "match_type": "email", "match_value": "ann@example.com", "bill_to_customer_number": "1009"}
    )
    events = AuditEvent.objects.count()
    report = rules_import(content=_csv(rows), file_format="csv", actor="t", connection=connection, dry_run=True)
    assert report.ok and not report.applied
    assert report.counts["customer"] == {"new": 1, "skip": 2}
    assert not CustomerRule.objects.filter(match_type="email").exists()
    assert AuditEvent.objects.count() == events


def test_rows_must_belong_to_the_connection_being_imported():
    connection, other = mapped_connection(), make_connection()
    content = rules_export(connection=connection)
    report = rules_import(content=content, file_format="csv", actor="t", connection=other)
    assert not report.ok
    assert "this import is for" in report.issues[0].messages[0]
    assert not CustomerRule.objects.filter(connection=other).exists()


def test_without_a_connection_each_row_names_an_existing_one():
    connection = mapped_connection()
    rows = [
        {"kind": "customer", "connection": "nope", "match_type": "default", "bill_to_customer_number": "1"},
        {
            "kind": "customer",
            "connection": connection.slug,
            "match_type": "email",
            "match_value": "a@b.c",
            "bill_to_customer_number": "2",
        },
    ]
    report = rules_import(content=_csv(rows), file_format="csv", actor="t")
    assert not report.ok
    assert "There is no connection 'nope'" in " ".join(report.issues[0].messages)
    assert not CustomerRule.objects.filter(match_type="email").exists()
    report = rules_import(content=_csv(rows[1:]), file_format="csv", actor="t")
    assert report.ok and CustomerRule.objects.filter(connection=connection, match_type="email").exists()


def test_xlsx_number_and_date_cells_are_read_as_the_text_they_show():
    connection = mapped_connection()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "customer"  # the sheet name gives the kind
    sheet.append(["match_type", "match_value", "bill_to_customer_number", "effective_from", "enabled"])
    sheet.append(["customer_id", 42.0, 1008, date(2026, 2, 1), True])
    buffer = io.BytesIO()
    book.save(buffer)
    report = rules_import(content=buffer.getvalue(), file_format="xlsx", actor="t", connection=connection)
    assert report.ok, report.issues
    rule = CustomerRule.objects.get(connection=connection, match_type="customer_id")
    assert (rule.match_value, rule.bill_to_customer_number, rule.effective_from) == ("42", "1008", date(2026, 2, 1))


# ---------------------------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------------------------


def test_export_rules_command_writes_csv_to_stdout_and_xlsx_to_a_file(tmp_path):
    connection = mapped_connection()
    out = io.StringIO()
    call_command("export_rules", connection.slug, "--kind", "template", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 7 and {r["kind"] for r in rows} == {"template"}
    target = tmp_path / "rules.xlsx"
    call_command("export_rules", connection.slug, "--format", "xlsx", "-o", str(target), stderr=io.StringIO())
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["layout", "template", "store", "customer", "product", "tax"]

    # Redirected standard output takes the binary workbook too (export_rules SLUG --format xlsx > rules.xlsx).
    redirected = tmp_path / "redirected.xlsx"
    with redirected.open("w") as stream:
        call_command("export_rules", connection.slug, "--format", "xlsx", stdout=stream)
    assert openpyxl.load_workbook(redirected).sheetnames == book.sheetnames


def test_import_rules_command_round_trip_and_dry_run(tmp_path):
    connection = mapped_connection()
    path = tmp_path / "rules.csv"
    call_command("export_rules", connection.slug, "-o", str(path), stderr=io.StringIO())
    out = io.StringIO()
    call_command("import_rules", connection.slug, str(path), stdout=out)
    assert "customer: 0 new, 0 changed, 2 unchanged" in out.getvalue()

    rows = _rows(path.read_bytes())
    rows.append({"kind": "product", "match_type": "category", "match_value": "12", "segments": "account=4400"})
    path.write_bytes(_csv(rows))
    out = io.StringIO()
    call_command("import_rules", connection.slug, str(path), "--dry-run", stdout=out)
    assert "dry run" in out.getvalue() and "product: 1 new" in out.getvalue()
    assert not ProductRule.objects.filter(match_type="category").exists()
    call_command("import_rules", connection.slug, str(path), stdout=io.StringIO())
    assert ProductRule.objects.get(match_type="category").segments == {"account": "4400"}


def test_import_rules_command_fails_on_row_errors_and_saves_nothing(tmp_path):
    connection = mapped_connection()
    path = tmp_path / "rules.csv"
    path.write_bytes(
        _csv(
            [
                {"kind": "customer", "match_type": "email", "match_value": "a@b.c", "bill_to_customer_number": "1"},
                {"kind": "customer", "match_type": "company", "match_value": "", "bill_to_customer_number": "2"},
            ]
        )
    )
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row\\(s\\) have errors; nothing was imported"):
        call_command("import_rules", connection.slug, str(path), stderr=err)
    assert "line 3 (customer): match_value: Say what the rule matches" in err.getvalue()
    assert not CustomerRule.objects.filter(match_type="email").exists()


def test_import_rules_command_refuses_unknown_connections_and_formats(tmp_path):
    connection = make_connection()
    path = tmp_path / "rules.txt"
    path.write_text("x")
    with pytest.raises(CommandError, match="There is no connection"):
        call_command("import_rules", "nope", str(path))
    with pytest.raises(CommandError, match="name it .csv or .xlsx"):
        call_command("import_rules", connection.slug, str(path))


def test_the_readme_example_file_imports():
    from pathlib import Path

    connection = make_connection(slug="acme-us")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("## Mappings", 1)[1].split("```csv\n", 1)[1].split("```", 1)[0]
    report = rules_import(content=example.encode(), file_format="csv", actor="t", connection=connection)
    assert report.ok, report.issues
    assert ProductRule.objects.get(connection=connection).segments == {"account": "4110", "product": "0015"}


def test_a_value_that_looks_like_a_formula_stays_text_in_the_workbook():
    connection = mapped_connection()
    ProductRule.objects.filter(match_value="LAP-15").update(notes='=HYPERLINK("http://evil.example","x")')
    content = rules_export(connection=connection, file_format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content))["product"]
    notes = [row[-1] for row in sheet.iter_rows(min_row=2)]
    assert any(c.value == '=HYPERLINK("http://evil.example","x")' and c.data_type == "s" for c in notes)
    events = AuditEvent.objects.count()
    report = rules_import(content=content, file_format="xlsx", actor="t", connection=connection)
    assert report.ok and report.counts["product"] == {"skip": 2}
    assert AuditEvent.objects.count() == events


def test_tax_rules_import_from_a_csv_with_their_codes_and_are_refused_without_them():
    connection = mapped_connection()
    content = _csv(
        [
            {
                "kind": "tax",
                "match_type": "tax_code",
                "match_value": "US-TX-*-Rate State",
                "tax_regime_code": "US SALES AND USE TAX",
                "tax": "TX STATE SALES TAX",
                "tax_status_code": "STANDARD",
                "tax_rate_code": "TX_STATE",
                "tax_classification_code": "US_STD",
            },
            {"kind": "tax", "match_type": "rate", "match_value": "0", "country": "us", "tax_classification_code": "EX"},
            {"kind": "tax", "match_type": "rate", "match_value": "7", "country": "US", "tax_regime_code": "R"},
            {"kind": "tax", "match_type": "rate", "match_value": "abc", "tax_classification_code": "X"},
        ]
    )
    report = rules_import(content=content, file_format="csv", actor="finance", connection=connection)
    messages = {issue.where: " ".join(issue.messages) for issue in report.issues}
    assert "give both" in messages["line 4"]  # a regime without its rate code
    assert "matches a percent" in messages["line 5"]
    assert not report.applied
    good = _csv(_rows(content)[:2])
    report = rules_import(content=good, file_format="csv", actor="finance", connection=connection)
    assert report.ok and report.counts["tax"] == {"new": 2}, report.issues
    exempt = TaxRule.objects.get(connection=connection, match_type="rate")
    assert (exempt.country, exempt.tax_classification_code) == ("US", "EX")
    assert AuditEvent.objects.filter(action="mappings.tax.created", actor="finance").count() == 2
    exported = [r for r in _rows(rules_export(connection=connection, kinds=("tax",)))]
    assert {r["match_value"] for r in exported} == {"", "US-TX-*-Rate State", "0"}
    assert "tax_rate_code" in exported[0] and "segments" not in exported[0]


def test_the_readmes_tax_rule_example_imports():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```csv\nkind,connection,match_type,match_value,country,tax_regime_code")
    block = readme[start + len("```csv\n") : readme.index("```", start + 6)]
    connection = make_connection(slug="acme-us")
    report = rules_import(content=block.encode(), file_format="csv", actor="finance", connection=connection)
    assert report.ok and report.counts["tax"] == {"new": 4}, report.issues
    assert TaxRule.objects.get(connection=connection, match_type="rate").tax_classification_code == "US_EXEMPT"
