import base64
import csv
import dataclasses
import io
import zipfile
from datetime import date
from decimal import Decimal

import pytest

from fusion import fbdi

HEADER = fbdi.BatchHeader(
    ledger_id="300000046975971",
    source="Commerce",
    category="Sales",
    group_id=1763000000123,
    batch_name="SHOP-20251114",
    batch_description="Adobe Commerce sales",
    created_on=date(2025, 3, 14),
)


def _journal(dr="129.99", cr_rev="119.99", cr_ship="10.00"):
    return fbdi.Journal(
        name="MAG-000012345 Order",
        description="Adobe Commerce order 000012345",
        accounting_date=date(2025, 3, 14),
        currency="USD",
        lines=[
            fbdi.JournalLine("01-000-1290-0000-000", Decimal(dr), None, "Clearing order 000012345"),
            fbdi.JournalLine("01-000-4110-0000-000", None, Decimal(cr_rev), "Revenue LAPTOP-15"),
            fbdi.JournalLine("01-000-4510-0000-000", None, Decimal(cr_ship), "Freight"),
        ],
    )


def test_gl_interface_rows_are_positional_with_149_columns():
    rows = fbdi.gl_interface_rows(HEADER, [_journal()])
    assert len(rows) == 3
    assert all(len(row) == 149 for row in rows)
    first, revenue = rows[0], rows[1]
    assert first[0:8] == ["NEW", "300000046975971", "2025/03/14", "Commerce", "Sales", "USD", "2025/03/14", "A"]
    assert first[8:13] == ["01", "000", "1290", "0000", "000"]
    assert first[13:38] == [""] * 25
    assert (first[38], first[39]) == ("129.99", "")
    assert (revenue[38], revenue[39]) == ("", "119.99")
    assert first[42] == "SHOP-20251114" and first[43] == "Adobe Commerce sales"
    assert first[45] == "MAG-000012345 Order" and first[46] == "Adobe Commerce order 000012345"
    assert revenue[51] == "Revenue LAPTOP-15"
    assert first[66] == "1763000000123"
    assert first[94] == "Mar-25"


def test_the_file_balances_column_by_column():
    rows = fbdi.gl_interface_rows(HEADER, [_journal(), _journal("50.00", "45.00", "5.00")])
    debits = sum(Decimal(r[38]) for r in rows if r[38])
    credits = sum(Decimal(r[39]) for r in rows if r[39])
    assert debits == credits == Decimal("179.99")


def test_an_unbalanced_journal_is_refused():
    with pytest.raises(ValueError, match="does not balance"):
        fbdi.gl_interface_rows(HEADER, [_journal(dr="130.00")])


def test_a_line_with_both_sides_is_refused():
    journal = fbdi.Journal(
        "J", "J", date(2025, 3, 14), "USD", [fbdi.JournalLine("01-1", Decimal(1), Decimal(1), "both")]
    )
    with pytest.raises(ValueError, match="exactly one of debit or credit"):
        fbdi.gl_interface_rows(HEADER, [journal])


def test_zip_holds_gl_interface_csv_without_header_and_quotes_commas():
    journal = _journal()
    journal = fbdi.Journal(journal.name, 'Order "12345", web', journal.accounting_date, "USD", journal.lines)
    rows = fbdi.gl_interface_rows(HEADER, [journal])
    archive = zipfile.ZipFile(io.BytesIO(fbdi.gl_interface_zip(rows)))
    assert archive.namelist() == ["GlInterface.csv"]
    parsed = list(csv.reader(io.StringIO(archive.read("GlInterface.csv").decode())))
    assert parsed == rows
    assert parsed[0][0] == "NEW"  # no header row


def test_import_bulk_data_payload_names_the_launcher_and_group():
    rows = fbdi.gl_interface_rows(HEADER, [_journal()])
    payload = fbdi.import_bulk_data_payload(HEADER, fbdi.gl_interface_zip(rows), "GlInterface_1.zip")
    assert payload["OperationName"] == "importBulkData"
    assert payload["JobName"] == "/oracle/apps/ess/financials/generalLedger/programs/common,JournalImportLauncher"
    assert payload["DocumentAccount"] == "fin$/generalLedger$/import$"
    assert payload["ParameterList"] == "#NULL,Commerce,300000046975971,1763000000123,N,N,N"
    assert zipfile.ZipFile(io.BytesIO(base64.b64decode(payload["DocumentContent"]))).namelist() == ["GlInterface.csv"]


def test_a_journal_source_with_a_comma_is_quoted_in_the_parameter_list():
    header = fbdi.BatchHeader("1", "Web, EU", "Sales", 7, "B", "B", date(2025, 1, 1))
    payload = fbdi.import_bulk_data_payload(header, b"zip", "f.zip")
    assert payload["ParameterList"] == '#NULL,"Web, EU",1,7,N,N,N'


@pytest.mark.parametrize(
    ("rate_type", "rate", "expected"),
    [("Corporate", None, ("Corporate", "2025/03/14", "")), ("User", Decimal("1.25"), ("User", "2025/03/14", "1.25"))],
)
def test_a_journal_not_in_the_ledger_currency_carries_its_conversion(rate_type, rate, expected):
    journal = dataclasses.replace(
        _journal(), currency="EUR", conversion_type=rate_type, conversion_date=date(2025, 3, 14), conversion_rate=rate
    )
    rows = fbdi.gl_interface_rows(HEADER, [journal])
    assert all((row[5], row[63], row[64], row[65]) == ("EUR", *expected) for row in rows)
    assert all(row[63:66] == ["", "", ""] for row in fbdi.gl_interface_rows(HEADER, [_journal()]))
