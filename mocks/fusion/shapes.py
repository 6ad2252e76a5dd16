"""What Oracle documents about the parts of a Receivables body that a pod checks and a lenient stand-in would not:
tax (manual tax lines name their regime and rate; lines name known tax classification codes), freight (on a line
as AllocatedFreightAmount, or at the invoice header as FreightAmount with a Freight distribution without a line
number; on a credit memo, FreightCreditAmount) and foreign currency (a document not in the ledger currency names
its conversion rate type, and the rate for User). The shapes follow docs/reference/fusion.md §11; where Oracle
publishes no error text, the message is ours, in Fusion's V4 error shape with the attribute in `o:errorPath`.

In the fusion tax mode (a line with a tax classification code and no manual tax lines) the mock computes the tax
as Fusion would from its setup: the line amount times the classification's rate, rounded to the cent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mocks.fusion.query import decimal_or_none
from mocks.fusion.seed import (
    CONVERSION_RATE_TYPES,
    CREDIT_MEMO_LINE_ATTRIBUTES,
    INVOICE_LINE_ATTRIBUTES,
    LEDGER_CURRENCY,
    TAX_CLASSIFICATIONS,
    TAX_LINE_ATTRIBUTES,
    TAX_LINE_REQUIRED,
    TAX_RATES,
)
from mocks.server import MockError

TAX_LINES = {"invoice": "receivablesInvoiceLineTaxLines", "credit_memo": "receivablesCreditMemoLineTaxLines"}
CURRENCY = {"invoice": "InvoiceCurrencyCode", "credit_memo": "CreditMemoCurrency"}
# Oracle's text for AR_FUNC_CURRENCY_REQ ("Error Messages for Receivables Invoices", 25c); when Fusion raises it is
# not documented: here, a document not in the ledger currency that names no conversion rate type.
FUNC_CURRENCY_REQ = "The currency you entered is invalid. You can only create an invoice in the ledger currency."


def _rate_of(regime: Any, rate_code: Any) -> tuple[tuple[str, str, str, str], Decimal] | None:
    for key, percent in TAX_RATES.items():
        if (key[0], key[3]) == (regime, rate_code):
            return key, Decimal(percent)
    return None


class BodyShapes:
    """The checks, as a mixin of the Receivables handlers, whose `_reject` counts a refused create and builds
    its error."""

    _reject: Callable[..., MockError]

    # -- currency --------------------------------------------------------------------------------------------
    def _check_currency(self, body: dict[str, Any], kind: str) -> None:
        currency = str(body.get(CURRENCY[kind]) or LEDGER_CURRENCY).upper()
        rate_type = body.get("ConversionRateType")
        if currency != LEDGER_CURRENCY and not rate_type:
            raise self._reject(FUNC_CURRENCY_REQ, path="ConversionRateType", code="AR_FUNC_CURRENCY_REQ")
        if rate_type in (None, ""):
            return
        if rate_type not in CONVERSION_RATE_TYPES:
            valid = ", ".join(CONVERSION_RATE_TYPES)
            raise self._reject(
                f"The conversion rate type {rate_type} isn't valid. Valid values are {valid}.",
                path="ConversionRateType",
            )
        if rate_type == "User" and decimal_or_none(body.get("ConversionRate")) in (None, Decimal(0)):
            raise self._reject("Enter a conversion rate for the conversion rate type User.", path="ConversionRate")

    # -- lines: attributes, tax -------------------------------------------------------------------------------
    def _check_line_shapes(self, lines: list[dict[str, Any]], child: str, kind: str) -> None:
        allowed = set(INVOICE_LINE_ATTRIBUTES if kind == "invoice" else CREDIT_MEMO_LINE_ATTRIBUTES)
        for n, line in enumerate(lines):
            where = f"{child}[{n}]"
            unknown = sorted(set(line) - allowed)
            if unknown:
                raise self._reject(
                    f"The attribute {unknown[0]} is not found in the resource {child}.", path=f"{where}/{unknown[0]}"
                )
            code = line.get("TaxClassificationCode")
            if code not in (None, "") and code not in TAX_CLASSIFICATIONS:
                raise self._reject(
                    f"The tax classification code {code} isn't valid.", path=f"{where}/TaxClassificationCode"
                )
            taxes = line.get(TAX_LINES[kind])
            if taxes is not None:
                self._check_tax_lines(taxes, f"{where}/{TAX_LINES[kind]}", kind)

    def _check_tax_lines(self, taxes: Any, where: str, kind: str) -> None:
        if not isinstance(taxes, list):
            raise self._reject(f"{where} must be a list.", path=where)
        for n, tax in enumerate(taxes):
            path = f"{where}[{n}]"
            if not isinstance(tax, dict):
                raise self._reject(f"{path} must be an object.", path=path)
            unknown = sorted(set(tax) - set(TAX_LINE_ATTRIBUTES))
            if unknown:
                raise self._reject(f"The attribute {unknown[0]} is not found in the resource tax lines.", path=path)
            missing = [name for name in TAX_LINE_REQUIRED if tax.get(name) in (None, "")]
            if missing:
                raise self._reject(
                    f"A manual tax line needs a tax regime code, a tax rate code and a tax amount: {missing[0]} is "
                    "missing.",
                    path=f"{path}/{missing[0]}",
                )
            self._check_tax_line_values(tax, path, kind)

    def _check_tax_line_values(self, tax: dict[str, Any], path: str, kind: str) -> None:
        found = _rate_of(tax["TaxRegimeCode"], tax["TaxRateCode"])
        if found is None:
            raise self._reject(
                f"The tax rate code {tax['TaxRateCode']} isn't valid for the tax regime {tax['TaxRegimeCode']}.",
                path=f"{path}/TaxRateCode",
            )
        (_regime, name, status, _rate), _percent = found
        for attribute, expected in (("Tax", name), ("TaxStatusCode", status)):
            if tax.get(attribute) not in (None, "", expected):
                raise self._reject(
                    f"The {attribute} {tax[attribute]} isn't the one of tax rate code {tax['TaxRateCode']}.",
                    path=f"{path}/{attribute}",
                )
        amount = decimal_or_none(tax["TaxAmount"])
        if amount is None:
            raise self._reject("TaxAmount is not a number.", path=f"{path}/TaxAmount")
        if kind == "credit_memo" and amount > 0:
            raise self._reject("A credit memo tax amount must be negative.", path=f"{path}/TaxAmount")

    # -- freight ----------------------------------------------------------------------------------------------
    def _check_freight(self, body: dict[str, Any], lines: list[dict[str, Any]], distributions: Any, kind: str) -> None:
        if kind == "credit_memo":
            freight = decimal_or_none(body.get("FreightCreditAmount", 0))
            if freight is None or freight > 0:
                raise self._reject("FreightCreditAmount must be a negative number.", path="FreightCreditAmount")
            return
        on_lines = {
            line.get("LineNumber", n + 1): decimal_or_none(line["AllocatedFreightAmount"])
            for n, line in enumerate(lines)
            if line.get("AllocatedFreightAmount") not in (None, "")
        }
        if any(amount is None for amount in on_lines.values()):
            raise self._reject("AllocatedFreightAmount is not a number.", path="receivablesInvoiceLines")
        header = body.get("FreightAmount")
        if header is not None and decimal_or_none(header) is None:
            raise self._reject("FreightAmount is not a number.", path="FreightAmount")
        if header is not None and on_lines:
            raise self._reject(
                "Give the freight either at the invoice header (FreightAmount) or on its lines "
                "(AllocatedFreightAmount), not both.",
                path="FreightAmount",
            )
        if isinstance(distributions, list):
            self._check_freight_distributions(distributions, on_lines, decimal_or_none(header))

    def _check_freight_distributions(
        self, distributions: list[Any], on_lines: dict[Any, Any], header: Decimal | None
    ) -> None:
        """Every Freight distribution accounts for freight the body has: a line's AllocatedFreightAmount (by
        InvoiceLineNumber) or the header's FreightAmount (no line number); the amounts add up to it."""
        booked: dict[Any, Decimal] = {}
        for n, dist in enumerate(distributions):
            if not isinstance(dist, dict) or dist.get("AccountClass") != "Freight":
                continue
            line = dist.get("InvoiceLineNumber")
            where = f"receivablesInvoiceDistributions[{n}]"
            if line is None and header is None:
                raise self._reject(
                    "A Freight distribution without a line number accounts for freight at the invoice header: "
                    "give the invoice its FreightAmount.",
                    path=f"{where}/InvoiceLineNumber",
                )
            if line is not None and line not in on_lines:
                raise self._reject(
                    f"Line {line} has a Freight distribution but no freight: give the line its "
                    "AllocatedFreightAmount, or put the freight at the invoice header.",
                    path=f"{where}/InvoiceLineNumber",
                )
            amount = decimal_or_none(dist.get("Amount"))
            if amount is not None:
                booked[line] = booked.get(line, Decimal(0)) + amount
        freight = {**on_lines, **({None: header} if header is not None else {})}
        for target, amount in booked.items():
            if amount != freight[target]:
                where = "the invoice header" if target is None else f"line {target}"
                raise self._reject(
                    f"The Freight distributions of {where} total {amount}, not its freight {freight[target]}.",
                    path="receivablesInvoiceDistributions",
                )

    # -- the fusion tax mode ----------------------------------------------------------------------------------
    def computed_tax_lines(self, lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        """The lines as stored: a line with a classification code and no manual tax lines gets the tax Fusion
        would compute (line amount x the classification's rate)."""
        stored = []
        quantity_field = "Quantity" if kind == "invoice" else "LineQuantityCredit"
        for line in lines:
            line = dict(line)
            code = line.get("TaxClassificationCode")
            if code in TAX_CLASSIFICATIONS and not line.get(TAX_LINES[kind]):
                found = _rate_of(*TAX_CLASSIFICATIONS[code])
                assert found is not None
                (regime, name, status, rate_code), percent = found
                amount = Decimal(str(line.get(quantity_field, 1))) * Decimal(str(line["UnitSellingPrice"]))
                tax = (amount * percent / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                line[TAX_LINES[kind]] = [
                    {
                        "TaxRegimeCode": regime,
                        "Tax": name,
                        "TaxStatusCode": status,
                        "TaxRateCode": rate_code,
                        "TaxRate": float(percent),
                        "TaxAmount": float(tax),
                        "TaxLineNumber": 1,
                    }
                ]
            stored.append(line)
        return stored
