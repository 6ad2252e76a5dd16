"""Just enough of Fusion's REST contract for the posting tests, answering through `responses` callbacks."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import responses

BASE = "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
SEGMENTS = ("Company", "Department", "Account", "SubAccount", "Product")
DISABLED = {"01-000-4999-0000-000"}


class FakeFusion:
    """Just enough of Fusion's REST contract, answering through `responses` callbacks."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.invoices: dict[str, dict] = {}
        self.posts: list[dict] = []
        self.post_failures: list = []  # callables or (status, body) consumed one per POST
        # The rate Fusion computes tax at for a line sent with a classification code and no tax lines (the fusion
        # tax mode); a GET of the document answers it.
        self.computed_tax_rate = Decimal("8.25")
        rsps.add(responses.POST, TOKEN_URL, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
        rsps.add_callback(responses.GET, re.compile(rf"{BASE}/customerAccountSitesLOV.*"), self.sites)
        rsps.add_callback(responses.GET, re.compile(rf"{BASE}/accountCombinationsLOV.*"), self.combinations)
        for resource in ("receivablesInvoices", "receivablesCreditMemos"):
            rsps.add_callback(responses.GET, re.compile(rf"{BASE}/{resource}\?.*"), self.lookup)
            rsps.add_callback(responses.GET, re.compile(rf"{BASE}/{resource}/(\d+)\?.*"), self.read)
            rsps.add_callback(responses.POST, f"{BASE}/{resource}", self.create)

    @staticmethod
    def _q(request) -> dict[str, str]:
        q = parse_qs(urlsplit(request.url).query).get("q", [""])[0]
        return {a: v.replace("''", "'") for a, v in re.findall(r"(\w+) = '((?:[^']|'')*)'", q)}

    @staticmethod
    def _page(items):
        return 200, {}, json.dumps({"items": items, "count": len(items), "hasMore": False, "limit": 500, "offset": 0})

    def sites(self, request):
        number = self._q(request).get("AccountNumber")
        rows = [{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "Main", "CustomerName": "Acme Corp"}]
        return self._page([r for r in rows if r["AccountNumber"] == number])

    def combinations(self, request):
        wanted = self._q(request)
        combination = "-".join(wanted.get(s, "") for s in SEGMENTS)
        row = dict(zip(SEGMENTS, combination.split("-"), strict=True))
        row.update(
            _CODE_COMBINATION_ID=1,
            EnabledFlag="N" if combination in DISABLED else "Y",
            StartDateActive="2015-01-01",
            EndDateActive=None,
            DetailPostingAllowedFlag="Y",
        )
        return self._page([row])

    def lookup(self, request):
        number = self._q(request).get("TransactionNumber")
        found = [v for k, v in self.invoices.items() if k == number]
        return self._page(
            [
                {"CustomerTransactionId": f["id"], "TransactionNumber": number, "CrossReference": f.get("xref", "")}
                for f in found
            ]
        )

    def read(self, request):
        """One document with its lines and their tax lines: as sent, or computed from the classification code."""
        wanted = int(re.search(r"/(\d+)\?", request.url).group(1))
        found = next((f for f in self.invoices.values() if f["id"] == wanted), None)
        if found is None:
            return 404, {}, json.dumps({"title": "Not Found"})
        credit = "receivablesCreditMemoLines" in found["body"]
        lines_key = "receivablesCreditMemoLines" if credit else "receivablesInvoiceLines"
        taxes_key = "receivablesCreditMemoLineTaxLines" if credit else "receivablesInvoiceLineTaxLines"
        lines = []
        for line in found["body"].get(lines_key, []):
            line = dict(line)
            if line.get("TaxClassificationCode") and not line.get(taxes_key):
                amount = Decimal(str(line.get("LineQuantityCredit" if credit else "Quantity", 1))) * Decimal(
                    str(line["UnitSellingPrice"])
                )
                tax = (amount * self.computed_tax_rate / 100).quantize(Decimal("0.01"))
                line[taxes_key] = [{"TaxRateCode": "STD", "TaxAmount": float(tax)}]
            lines.append(line)
        return 200, {}, json.dumps({"CustomerTransactionId": wanted, lines_key: {"items": lines, "count": len(lines)}})

    def create(self, request):
        body = json.loads(request.body)
        self.posts.append(body)
        if self.post_failures:
            failure = self.post_failures.pop(0)
            if callable(failure):
                return failure(body)
            return failure[0], {}, json.dumps(failure[1])
        return self.store(body)

    def store(self, body):
        if body["TransactionNumber"] in self.invoices:
            return (
                400,
                {},
                json.dumps(
                    {
                        "title": "Bad Request",
                        "o:errorDetails": [
                            {"detail": "The transaction number already exists.", "o:errorCode": "AR-855123"}
                        ],
                    }
                ),
            )
        self.invoices[body["TransactionNumber"]] = {"id": 300100000 + len(self.invoices), "body": body}
        return (
            201,
            {},
            json.dumps(
                {
                    "CustomerTransactionId": self.invoices[body["TransactionNumber"]]["id"],
                    "TransactionNumber": body["TransactionNumber"],
                }
            ),
        )
