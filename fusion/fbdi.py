"""GlInterface.csv for Fusion's Journal Import (FBDI): positional, no header row, 149 columns.
Pure functions: entries in, file bytes out: a zipped GlInterface.csv in the GL_INTERFACE column order and the
`erpintegrations` importBulkData body that loads it with the JournalImportLauncher job."""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

COLUMNS = 149
STATUS, LEDGER_ID, ACCOUNTING_DATE, SOURCE, CATEGORY, CURRENCY, DATE_CREATED, ACTUAL_FLAG = range(8)
SEGMENT1 = 8
MAX_SEGMENTS = 30
ENTERED_DR, ENTERED_CR = 38, 39
REFERENCE1, REFERENCE2, REFERENCE4, REFERENCE5, REFERENCE10 = 42, 43, 45, 46, 51
CONVERSION_TYPE, CONVERSION_DATE, CONVERSION_RATE = 63, 64, 65  # USER_CURRENCY_CONVERSION_TYPE, ..._DATE, ..._RATE
GROUP_ID = 66
PERIOD_NAME = 94
JOB_NAME = "/oracle/apps/ess/financials/generalLedger/programs/common,JournalImportLauncher"
DOCUMENT_ACCOUNT = "fin$/generalLedger$/import$"
TERMINAL_STATES = {"SUCCEEDED", "WARNING", "ERROR", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class JournalLine:
    combination: str
    entered_dr: Decimal | None
    entered_cr: Decimal | None
    description: str


@dataclass(frozen=True)
class Journal:
    """One record's journal: its name (REFERENCE4) and balanced lines."""

    name: str
    description: str
    accounting_date: date
    currency: str
    lines: Sequence[JournalLine]
    # A journal not in the ledger currency: the rate type, its date and (User type) the rate, as on the invoice.
    conversion_type: str = ""
    conversion_date: date | None = None
    conversion_rate: Decimal | None = None


@dataclass(frozen=True)
class BatchHeader:
    ledger_id: str
    source: str
    category: str
    group_id: int
    batch_name: str
    batch_description: str
    created_on: date
    delimiter: str = "-"


def period_name(day: date) -> str:
    """Fusion's default monthly period name, e.g. Mar-25."""
    return day.strftime("%b-%y")


def _money(value: Decimal | None) -> str:
    return "" if value is None or value == 0 else f"{value:f}"


def unbalanced(journal: Journal) -> Decimal:
    dr = sum((line.entered_dr or Decimal(0) for line in journal.lines), Decimal(0))
    cr = sum((line.entered_cr or Decimal(0) for line in journal.lines), Decimal(0))
    return dr - cr


def gl_interface_rows(header: BatchHeader, journals: Iterable[Journal]) -> list[list[str]]:
    rows: list[list[str]] = []
    for journal in journals:
        difference = unbalanced(journal)
        if difference:
            raise ValueError(f"journal {journal.name} does not balance (debits - credits = {difference})")
        for line in journal.lines:
            segments = line.combination.split(header.delimiter)
            if not 1 <= len(segments) <= MAX_SEGMENTS or any(s == "" for s in segments):
                raise ValueError(
                    f"account combination {line.combination!r} is not {header.delimiter!r}-delimited segments"
                )
            if bool(line.entered_dr) == bool(line.entered_cr):
                raise ValueError(f"journal {journal.name}: a line carries exactly one of debit or credit")
            row = [""] * COLUMNS
            row[STATUS] = "NEW"
            row[LEDGER_ID] = header.ledger_id
            row[ACCOUNTING_DATE] = journal.accounting_date.strftime("%Y/%m/%d")
            row[SOURCE] = header.source
            row[CATEGORY] = header.category
            row[CURRENCY] = journal.currency
            row[DATE_CREATED] = header.created_on.strftime("%Y/%m/%d")
            row[ACTUAL_FLAG] = "A"
            row[SEGMENT1 : SEGMENT1 + len(segments)] = segments
            row[ENTERED_DR] = _money(line.entered_dr)
            row[ENTERED_CR] = _money(line.entered_cr)
            row[REFERENCE1] = header.batch_name[:100]
            row[REFERENCE2] = header.batch_description[:240]
            row[REFERENCE4] = journal.name[:100]
            row[REFERENCE5] = journal.description[:240]
            row[REFERENCE10] = line.description[:240]
            if journal.conversion_type:
                row[CONVERSION_TYPE] = journal.conversion_type
                row[CONVERSION_DATE] = (journal.conversion_date or journal.accounting_date).strftime("%Y/%m/%d")
                row[CONVERSION_RATE] = _money(journal.conversion_rate)
            row[GROUP_ID] = str(header.group_id)
            row[PERIOD_NAME] = period_name(journal.accounting_date)
            rows.append(row)
    return rows


def gl_interface_csv(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def gl_interface_zip(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("GlInterface.csv", gl_interface_csv(rows))
    return buffer.getvalue()


def _parameter(value: str) -> str:
    if not value:
        return "#NULL"
    return f'"{value}"' if "," in value else value


def import_bulk_data_payload(header: BatchHeader, zip_bytes: bytes, file_name: str) -> dict:
    """The erpintegrations importBulkData body that loads the file and runs JournalImportLauncher."""
    parameters = ["#NULL", header.source, header.ledger_id, str(header.group_id), "N", "N", "N"]
    return {
        "OperationName": "importBulkData",
        "DocumentContent": base64.b64encode(zip_bytes).decode("ascii"),
        "ContentType": "zip",
        "FileName": file_name,
        "DocumentAccount": DOCUMENT_ACCOUNT,
        "JobName": JOB_NAME,
        "ParameterList": ",".join(_parameter(p) for p in parameters),
        "CallbackURL": "#NULL",
        "NotificationCode": "10",
        "JobOptions": "ExtractFileType=ALL",
    }
