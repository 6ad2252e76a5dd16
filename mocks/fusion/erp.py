"""File-based data import through erpintegrations, as for GL journals: POST with `OperationName: importBulkData`
uploads a base64 zip holding GlInterface.csv and answers the ESS request id (`ReqstId`); then
`GET erpintegrations?finder=ESSJobStatusRF;requestId=N` answers the job's `RequestStatus`, RUNNING for a few
polls and then its end state. As Journal Import would, a JournalImportLauncher job ends in ERROR unless every
GL_INTERFACE row has the 149 columns of the template, status NEW, numeric entered amounts, and the rows of the
ParameterList's source, ledger and group id balance per journal; a row not in the ledger currency names its
conversion rate type (USER_CURRENCY_CONVERSION_TYPE), and the rate for User."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from mocks.fusion.query import DEFAULT_LIMIT, decimal_or_none, parse_finder
from mocks.fusion.seed import CONVERSION_RATE_TYPES, LEDGER_CURRENCY
from mocks.server import DROP, Faults, MockError, MockRequest, MockResponse, MockServer, json_response

ESS_TERMINAL = ("SUCCEEDED", "WARNING", "ERROR", "FAILED", "CANCELLED")
# GlInterface.csv: the columns of the GL_INTERFACE template, and the positions of those Journal Import checks.
GL_INTERFACE_COLUMNS = 149
STATUS, LEDGER_ID, ACCOUNTING_DATE, SOURCE, CURRENCY = 0, 1, 2, 3, 5
ENTERED_DR, ENTERED_CR = 38, 39
BATCH_NAME, JOURNAL_NAME = 42, 45  # REFERENCE1, REFERENCE4
CONVERSION_TYPE, CONVERSION_RATE = 63, 65
GROUP_ID = 66


@dataclass
class FusionFaults(Faults):
    ess_running_polls: int = 2  # ESSJobStatusRF answers RUNNING this many times before the end state
    ess_error: bool = False  # every import job ends in ERROR

    HELP: ClassVar[dict[str, str]] = {
        **Faults.HELP,
        "ess_running_polls": "ESS status polls answered RUNNING before the end state",
        "ess_error": "every import job ends in ERROR",
    }


@dataclass
class ErpJob:
    request_id: str
    file_name: str
    parameters: list[str]
    rows: list[list[str]]
    imported_rows: int = 0
    polls: int = 0
    final: str = "SUCCEEDED"
    last_status: str = "WAIT"
    reasons: list[str] = field(default_factory=list)


class ErpIntegrations(MockServer):
    """The erpintegrations handlers."""

    faults: FusionFaults
    erp_jobs: dict[str, ErpJob]
    _next_request_id: int

    def erp_post(self, request: MockRequest) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise MockError(400, "The request body must be a JSON object.")
        if body.get("OperationName") != "importBulkData":
            raise MockError(400, f"The operation {body.get('OperationName')!r} is not supported by this mock.")
        for name in ("DocumentContent", "ContentType", "FileName", "DocumentAccount", "JobName", "ParameterList"):
            if not body.get(name):
                raise MockError(400, f"The value of the attribute {name} is required.")
        try:
            archive_bytes = base64.b64decode(body["DocumentContent"], validate=True)
        except (binascii.Error, ValueError):
            raise MockError(400, "DocumentContent is not valid base64.") from None
        with self._lock:
            self._next_request_id += 1
            request_id = str(self._next_request_id)
            job = ErpJob(request_id, str(body["FileName"]), _parameter_list(str(body["ParameterList"])), [])
            _load_job(job, archive_bytes, str(body["JobName"]))
            self.erp_jobs[request_id] = job
        if self.maybe_drop():
            return DROP
        answer = {k: v for k, v in body.items() if k != "DocumentContent"}
        answer.update(DocumentContent=None, ReqstId=request_id)
        return json_response(201, answer)

    def erp_get(self, request: MockRequest) -> MockResponse:
        finder = request.arg("finder")
        if not finder:
            raise MockError(400, "This mock answers erpintegrations only with finder=ESSJobStatusRF;requestId=N.")
        name, variables = parse_finder(finder)
        if name != "ESSJobStatusRF" or "requestId" not in variables:
            raise MockError(400, f"The finder {name} is not supported by this mock.")
        with self._lock:
            job = self.erp_jobs.get(variables["requestId"])
            items = []
            if job is not None:
                job.polls += 1
                status = (
                    "RUNNING"
                    if job.polls <= self.faults.ess_running_polls
                    else ("ERROR" if self.faults.ess_error else job.final)
                )
                job.last_status = status
                items.append({"OperationName": "getESSJobStatus", "ReqstId": job.request_id, "RequestStatus": status})
        body = {
            "items": items,
            "count": len(items),
            "hasMore": False,
            "limit": DEFAULT_LIMIT,
            "offset": 0,
            "links": [{"rel": "self", "href": request.url, "name": "erpintegrations", "kind": "collection"}],
        }
        return json_response(200, body)

    def erp_job_details(self, request_id: str) -> dict[str, Any]:
        """What GET /__mock__/erp_jobs/<id> shows of an import job: its rows and outcome."""
        job = self.erp_jobs.get(request_id)
        if job is None:
            raise MockError(404, "No such import job.")
        return {
            "request_id": job.request_id,
            "file_name": job.file_name,
            "parameters": job.parameters,
            "rows": job.rows,
            "reasons": job.reasons,
            "imported_rows": job.imported_rows,
            "final": job.final,
        }


def _parameter_list(text: str) -> list[str]:
    return [p.strip().strip('"') for p in re.findall(r'(?:[^,"]|"[^"]*")+', text or "")]


def _load_job(job: ErpJob, archive_bytes: bytes, job_name: str) -> None:
    """Unzip GlInterface.csv into the job's rows and decide the end state the way Journal Import would."""
    text = _gl_interface_csv(job, archive_bytes)
    if text is None:
        return
    job.rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if job_name.endswith("JournalImportLauncher"):
        _journal_import(job)


def _gl_interface_csv(job: ErpJob, archive_bytes: bytes) -> str | None:
    """The text of GlInterface.csv in the zip; None, with the job failed, when there is none."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            member = next((n for n in archive.namelist() if n.rsplit("/", 1)[-1].lower() == "glinterface.csv"), None)
            if member is None:
                job.final, job.reasons = "ERROR", ["GlInterface.csv is not in the zip"]
                return None
            return archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError):
        job.final, job.reasons = "ERROR", ["the document is not a zip holding a UTF-8 GlInterface.csv"]
        return None


def _journal_import(job: ErpJob) -> None:
    """Rows must be 149 columns, match the source, ledger and group id of the ParameterList, and balance per
    journal; otherwise the job ends in ERROR with the reasons."""
    if len(job.parameters) < 4:
        job.final, job.reasons = "ERROR", ["ParameterList needs source, ledger and group id"]
        return
    source, ledger, group = job.parameters[1], job.parameters[2], job.parameters[3]
    journals: dict[tuple[str, ...], Decimal] = {}
    for n, row in enumerate(job.rows, start=1):
        if len(row) != GL_INTERFACE_COLUMNS:
            job.reasons.append(f"row {n} has {len(row)} columns, expected {GL_INTERFACE_COLUMNS}")
            continue
        if (row[SOURCE], row[LEDGER_ID], row[GROUP_ID]) != (source, ledger, group):
            continue
        if row[STATUS] != "NEW":
            job.reasons.append(f"row {n}: STATUS must be NEW")
            continue
        conversion = _conversion_problem(row)
        if conversion:
            job.reasons.append(f"row {n}: {conversion}")
            continue
        dr, cr = decimal_or_none(row[ENTERED_DR] or "0"), decimal_or_none(row[ENTERED_CR] or "0")
        if dr is None or cr is None:
            job.reasons.append(f"row {n}: the entered amounts are not numbers")
            continue
        key = (row[LEDGER_ID], row[ACCOUNTING_DATE], row[CURRENCY], row[BATCH_NAME], row[JOURNAL_NAME])
        journals[key] = journals.get(key, Decimal(0)) + dr - cr
        job.imported_rows += 1
    if job.imported_rows == 0:
        job.reasons.append(f"no GL_INTERFACE rows for source {source}, ledger {ledger}, group {group}")
    for (_, _, _, batch, journal), difference in journals.items():
        if difference:
            job.reasons.append(f"journal {journal or batch} does not balance (debits - credits = {difference})")
    if job.reasons:
        job.final = "ERROR"


def _conversion_problem(row: list[str]) -> str:
    """Why Journal Import would refuse the row's currency conversion ("" when it would not)."""
    rate_type = row[CONVERSION_TYPE]
    if row[CURRENCY] != LEDGER_CURRENCY and not rate_type:
        return f"currency {row[CURRENCY]} is not the ledger currency {LEDGER_CURRENCY} and has no conversion rate type"
    if rate_type and rate_type not in CONVERSION_RATE_TYPES:
        return f"the conversion rate type {rate_type} is not valid"
    if rate_type == "User" and decimal_or_none(row[CONVERSION_RATE] or None) is None:
        return "the User conversion rate type needs CURRENCY_CONVERSION_RATE"
    return ""
