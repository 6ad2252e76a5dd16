"""Receivables invoices and credit memos (receivablesInvoices, receivablesCreditMemos): list and get like any
resource, create with the checks Fusion makes, and PATCH of an invoice's status, terms or date.

A create is refused with a 400 (V4 `o:errorDetails`, the offending attribute in `o:errorPath`) when an attribute
is unknown or read-only, a required one is missing, the business unit or bill-to customer account is unknown, a
date is not YYYY-MM-DD, there is no line, a credit memo line is not negative, or a distribution names an
account class other than Revenue, Receivable, Freight or Tax or an account combination that is unknown,
disabled, inactive on the accounting date or a parent value without detail posting; and when the tax, freight
or currency is not in a shape Oracle documents (mocks.fusion.shapes). A second TransactionNumber in the same
transaction source and business unit is refused with Fusion's AR-855367. A line the fusion tax mode leaves to
Fusion gets its computed tax lines, which a GET of the document answers."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mocks.fusion.query import Collection, decimal_or_none
from mocks.fusion.rest import FusionResources
from mocks.fusion.seed import BUSINESS_UNIT, INVOICE_ATTRIBUTES, INVOICE_CHILDREN, INVOICE_READ_ONLY
from mocks.fusion.shapes import TAX_LINES, BodyShapes
from mocks.server import DROP, MockError, MockRequest, MockResponse, json_response

ACCOUNT_CLASSES = ("Revenue", "Receivable", "Freight", "Tax")
# The child resources holding a document's lines and its distributions.
LINES = {"invoice": "receivablesInvoiceLines", "credit_memo": "receivablesCreditMemoLines"}
DISTRIBUTIONS = {"invoice": "receivablesInvoiceDistributions", "credit_memo": "receivablesCreditMemoDistributions"}
# The only attributes PATCH may change on an invoice.
UPDATABLE = {"InvoiceStatus", "PaymentTerms", "TransactionDate"}


def entered_amount(row: dict[str, Any], kind: str) -> Decimal:
    """The document's total in its currency as Fusion answers it in `EnteredAmount` (docs/reference/fusion.md
    §11.5): lines, their freight and tax lines (given or computed), and the header freight; negative on a credit
    memo, whose lines are."""
    quantity_field = "Quantity" if kind == "invoice" else "LineQuantityCredit"
    header_freight = row.get("FreightAmount" if kind == "invoice" else "FreightCreditAmount")
    total = decimal_or_none(header_freight) or Decimal(0)
    for line in row[LINES[kind]]:
        quantity = decimal_or_none(line.get(quantity_field, 1)) or Decimal(0)
        price = decimal_or_none(line.get("UnitSellingPrice", line.get("LineAmount"))) or Decimal(0)
        total += quantity * price + (decimal_or_none(line.get("AllocatedFreightAmount")) or Decimal(0))
        for tax in line.get(TAX_LINES[kind]) or ():
            total += decimal_or_none(tax.get("TaxAmount")) or Decimal(0)
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class Receivables(BodyShapes, FusionResources):
    """The receivablesInvoices and receivablesCreditMemos handlers."""

    _next_transaction_id: int

    def list_invoices(self, request: MockRequest) -> MockResponse:
        with self._lock:
            rows = list(self.invoices.rows.values())
        return self._page(request, self.invoices, rows)

    def list_credit_memos(self, request: MockRequest) -> MockResponse:
        with self._lock:
            rows = list(self.credit_memos.rows.values())
        return self._page(request, self.credit_memos, rows)

    def get_invoice(self, request: MockRequest) -> MockResponse:
        return self.get_row(lambda: self.invoices)(request)

    def get_credit_memo(self, request: MockRequest) -> MockResponse:
        return self.get_row(lambda: self.credit_memos)(request)

    def create_invoice(self, request: MockRequest) -> MockResponse:
        return self._create(request, self.invoices, kind="invoice")

    def create_credit_memo(self, request: MockRequest) -> MockResponse:
        return self._create(request, self.credit_memos, kind="credit_memo")

    # -- create ----------------------------------------------------------------------------------------------
    def _create(self, request: MockRequest, collection: Collection, *, kind: str) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise self._reject("The request body must be a JSON object.")
        with self._lock:
            self._validate(body, collection, kind)
            number = body.get("TransactionNumber")
            if number:
                self._check_unique_number(collection, body, number)
            self._next_transaction_id += 1
            transaction_id = self._next_transaction_id
            stamp = self.utcnow().isoformat()
            row: dict[str, Any] = dict.fromkeys(collection.attributes)
            row.update(body)
            row[LINES[kind]] = self.computed_tax_lines(body[LINES[kind]], kind)
            row["EnteredAmount"] = float(entered_amount(row, kind))
            row.update(
                CustomerTransactionId=transaction_id,
                TransactionNumber=number or str(transaction_id)[-8:],
                InvoiceStatus=body.get("InvoiceStatus") or "Incomplete",
                AccountingDate=body.get("AccountingDate") or body["TransactionDate"],
                LegalEntityIdentifier="Vision Operations LE",
                CreationDate=stamp,
                LastUpdateDate=stamp,
            )
            if kind == "invoice":
                row.update(DueDate=body.get("DueDate") or body["TransactionDate"], BillToPartyId=300000047507490)
            collection.rows[str(transaction_id)] = row
            self.counters["invoices_created" if kind == "invoice" else "credit_memos_created"] += 1
        if self.maybe_drop():
            return DROP
        location = f"{self._root(request)}/{collection.name}/{transaction_id}"
        response = json_response(201, self._present(request, collection, row, include_children=True))
        response.headers["Location"] = location
        return response

    def _check_unique_number(self, collection: Collection, body: dict[str, Any], number: Any) -> None:
        for existing in collection.rows.values():
            if (existing["TransactionNumber"], existing["TransactionSource"], existing["BusinessUnit"]) == (
                number,
                body["TransactionSource"],
                body["BusinessUnit"],
            ):
                raise self._reject(
                    f"The transaction number {number} already exists for the transaction source "
                    f"{body['TransactionSource']} in business unit {body['BusinessUnit']}. "
                    "Enter a unique transaction number.",
                    path="TransactionNumber",
                    code="AR-855367",
                )

    def _reject(self, message: str, *, path: str | None = None, code: str = "") -> MockError:
        with self._lock:
            self.counters["rejected_creates"] += 1
        return MockError(400, message, code=code, parameters=path)

    # -- validation, in the order Fusion reports the first problem -------------------------------------------
    def _validate(self, body: dict[str, Any], collection: Collection, kind: str) -> None:
        if kind == "invoice":
            self._validate_invoice_attributes(body, collection)
        self._validate_header(body, kind)
        self._check_currency(body, kind)
        numbers = self._validate_lines(body.get(LINES[kind]), LINES[kind], kind)
        self._check_line_shapes(body[LINES[kind]], LINES[kind], kind)
        self._check_freight(body, body[LINES[kind]], body.get(DISTRIBUTIONS[kind]), kind)
        if DISTRIBUTIONS[kind] in body:
            on = str(body.get("AccountingDate") or body.get("TransactionDate"))
            self._validate_distributions(body[DISTRIBUTIONS[kind]], DISTRIBUTIONS[kind], numbers, on)

    def _validate_invoice_attributes(self, body: dict[str, Any], collection: Collection) -> None:
        allowed = set(INVOICE_ATTRIBUTES) | set(INVOICE_CHILDREN)
        unknown = sorted(k for k in body if k not in allowed)
        if unknown:
            raise self._reject(
                f"The attribute {unknown[0]} is not found in the resource {collection.name}.", path=unknown[0]
            )
        read_only = sorted(k for k in body if k in INVOICE_READ_ONLY)
        if read_only:
            raise self._reject(f"The attribute {read_only[0]} is read-only.", path=read_only[0])

    def _validate_header(self, body: dict[str, Any], kind: str) -> None:
        required: tuple[str, ...] = ("BusinessUnit", "TransactionSource", "TransactionType", "TransactionDate")
        if kind == "invoice":
            required += ("InvoiceCurrencyCode",)
        for name in required:
            if body.get(name) in (None, ""):
                raise self._reject(f"The value of the attribute {name} is required.", path=name)
        if not (body.get("BillToCustomerNumber") or body.get("BillToCustomerName")):
            raise self._reject(
                "A bill-to customer is required: give BillToCustomerNumber.", path="BillToCustomerNumber"
            )
        if body.get("BusinessUnit") != BUSINESS_UNIT:
            raise self._reject(f"The business unit {body.get('BusinessUnit')!r} is not valid.", path="BusinessUnit")
        number = body.get("BillToCustomerNumber")
        if number is not None and not any(s["AccountNumber"] == str(number) for s in self.customer_sites.rows.values()):
            raise self._reject(f"The bill-to customer account {number} is not valid.", path="BillToCustomerNumber")
        for name in ("TransactionDate", "AccountingDate"):
            if body.get(name) is not None:
                try:
                    date.fromisoformat(str(body[name]))
                except ValueError:
                    raise self._reject(
                        f"The date {body[name]!r} of {name} is not valid (YYYY-MM-DD).", path=name
                    ) from None

    def _validate_lines(self, lines: Any, child: str, kind: str) -> set[Any]:
        """Check the lines; answer their line numbers (given, or 1, 2, ... by position)."""
        if not isinstance(lines, list) or not lines:
            raise self._reject(f"At least one line is required in {child}.", path=child)
        numbers: set[Any] = set()
        for n, line in enumerate(lines):
            where = f"{child}[{n}]"
            if not isinstance(line, dict):
                raise self._reject(f"{where} must be an object.", path=where)
            description = line.get("Description", line.get("LineDescription", line.get("MemoLine")))
            if not description:
                raise self._reject("The line description is required.", path=f"{where}/Description")
            quantity_field = "Quantity" if kind == "invoice" else "LineQuantityCredit"
            quantity = decimal_or_none(line.get(quantity_field, 1))
            price = decimal_or_none(line.get("UnitSellingPrice", line.get("LineAmount")))
            if quantity is None or price is None:
                raise self._reject(f"The line needs a numeric {quantity_field} and UnitSellingPrice.", path=where)
            if kind == "credit_memo" and quantity * price > 0:
                raise self._reject("A credit memo line amount must be negative.", path=f"{where}/UnitSellingPrice")
            numbers.add(line.get("LineNumber", n + 1))
        return numbers

    def _validate_distributions(self, distributions: Any, child: str, line_numbers: set[Any], on: str) -> None:
        if not isinstance(distributions, list):
            raise self._reject(f"{child} must be a list.", path=child)
        for n, dist in enumerate(distributions):
            where = f"{child}[{n}]"
            if not isinstance(dist, dict):
                raise self._reject(f"{where} must be an object.", path=where)
            account_class = dist.get("AccountClass")
            if account_class not in ACCOUNT_CLASSES:
                raise self._reject(
                    f"The account class {account_class!r} is not valid. Valid values are {', '.join(ACCOUNT_CLASSES)}.",
                    path=f"{where}/AccountClass",
                )
            self._validate_combination(dist.get("AccountCombination"), on, path=f"{where}/AccountCombination")
            line = dist.get("InvoiceLineNumber", dist.get("CreditMemoLineNumber"))
            if account_class != "Receivable" and line is not None and line not in line_numbers:
                raise self._reject(
                    f"The line number {line} of the distribution does not exist.", path=f"{where}/InvoiceLineNumber"
                )
            for amount_field in ("Amount", "Percent"):
                if amount_field in dist and decimal_or_none(dist[amount_field]) is None:
                    raise self._reject(f"{amount_field} is not a number.", path=f"{where}/{amount_field}")

    def _validate_combination(self, combination: Any, on: str, *, path: str) -> None:
        """A distribution's account combination must be known, enabled, active on `on` and allow detail posting."""
        row = self.combination_by_segments(str(combination)) if combination else None
        if row is None:
            raise self._reject(f"The account combination {combination!r} is not valid.", path=path)
        if row["EnabledFlag"] != "Y":
            raise self._reject(f"The account combination {combination} is disabled.", path=path)
        if (row["StartDateActive"] and on < row["StartDateActive"]) or (
            row["EndDateActive"] and on > row["EndDateActive"]
        ):
            raise self._reject(f"The account combination {combination} is not active on {on}.", path=path)
        if row["DetailPostingAllowedFlag"] != "Y":
            raise self._reject(f"The account combination {combination} does not allow detail posting.", path=path)

    # -- update ----------------------------------------------------------------------------------------------
    def patch_invoice(self, request: MockRequest) -> MockResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise MockError(400, "The request body must be a JSON object.")
        not_updatable = sorted(set(body) - UPDATABLE)
        if not_updatable:
            raise MockError(
                400,
                f"The attribute {not_updatable[0]} cannot be updated. You can update only the "
                "InvoiceStatus, PaymentTerms, and TransactionDate attributes.",
            )
        if "InvoiceStatus" in body and body["InvoiceStatus"] not in ("Complete", "Incomplete"):
            raise MockError(400, f"The invoice status {body['InvoiceStatus']!r} is not valid.")
        with self._lock:
            row = self.invoices.rows.get(request.path_args["id"])
            if row is None:
                raise MockError(
                    404, f"The requested resource receivablesInvoices/{request.path_args['id']} does not exist."
                )
            row.update(body, LastUpdateDate=self.utcnow().isoformat())
        return json_response(200, self._present(request, self.invoices, row, include_children=True))
