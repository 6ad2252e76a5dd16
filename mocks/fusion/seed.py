"""The mock Fusion's resources and sample data: the attributes of receivablesInvoices and
receivablesCreditMemos (with their child resources), and the seeded rows of the reference lists: account
combinations of a five-segment chart of accounts (one disabled, one end-dated, one parent value without detail
posting), customer account sites and inventory items of organization M1, in business unit Vision Operations
(Oracle's demo data)."""

from __future__ import annotations

from typing import Any

BUSINESS_UNIT = "Vision Operations"
SEGMENTS = ("Company", "Department", "Account", "SubAccount", "Product")


def combination_row(
    ccid: int,
    combo: str,
    account_type: str,
    enabled: str = "Y",
    start: str | None = "2015-01-01",
    end: str | None = None,
    posting: str = "Y",
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "_CODE_COMBINATION_ID": ccid,
        "_CHART_OF_ACCOUNTS_ID": 5237,
        "AccountType": account_type,
        "EnabledFlag": enabled,
        "StartDateActive": start,
        "EndDateActive": end,
        "DetailPostingAllowedFlag": posting,
        "DetailBudgetingAllowedFlag": "Y",
        "SummaryFlag": "N",
        "FinancialCategory": None,
        "JgzzReconFlag": "N",
        "Reference3": None,
    }
    row.update(zip(SEGMENTS, combo.split("-"), strict=True))
    return row


SEED_COMBINATIONS = (
    combination_row(626901, "01-000-1210-0000-000", "A"),  # trade receivables
    combination_row(626902, "01-000-1290-0000-000", "A"),  # Commerce clearing
    combination_row(626903, "01-000-2210-0000-000", "L"),  # sales tax payable
    combination_row(626904, "01-000-4110-0000-000", "R"),  # product revenue
    combination_row(626905, "01-000-4190-0000-000", "R"),  # discounts
    combination_row(626906, "01-000-4510-0000-000", "R"),  # shipping revenue
    combination_row(626907, "01-000-4520-0000-000", "R"),  # freight
    combination_row(626908, "01-110-4110-0000-000", "R"),  # product revenue, web department
    combination_row(626909, "01-000-6510-0000-000", "E"),  # payment provider fees
    combination_row(626910, "01-000-4999-0000-000", "R", enabled="N"),  # disabled
    combination_row(626911, "01-000-4998-0000-000", "R", end="2020-12-31"),  # end-dated
    combination_row(626912, "01-000-4000-0000-000", "R", posting="N"),  # parent value: no detail posting
)

SEED_CUSTOMER_SITES = (
    {
        "CustomerName": "Computer Service and Rentals",
        "AccountNumber": "1008",
        "AccountDescription": "Retail",
        "CustomerAccountId": 300000047507496,
        "PartyNumber": "1006",
        "SiteName": "CSR Seattle",
        "SiteUseId": 1042,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Computer Service and Rentals",
        "AccountNumber": "1008",
        "AccountDescription": "Retail",
        "CustomerAccountId": 300000047507496,
        "PartyNumber": "1006",
        "SiteName": "CSR Portland",
        "SiteUseId": 1043,
        "PrimarySite": "N",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Commerce Web Customers",
        "AccountNumber": "20001",
        "AccountDescription": "Web store",
        "CustomerAccountId": 300000051234001,
        "PartyNumber": "20001",
        "SiteName": "WEB-US",
        "SiteUseId": 5001,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": None,
    },
    {
        "CustomerName": "Commerce Web Customers",
        "AccountNumber": "20001",
        "AccountDescription": "Web store",
        "CustomerAccountId": 300000051234001,
        "PartyNumber": "20001",
        "SiteName": "WEB-EU",
        "SiteUseId": 5002,
        "PrimarySite": "N",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": None,
        "TaxRegistrationNumber": "FR40303265045",
    },
    {
        "CustomerName": "Jane Doe",
        "AccountNumber": "20002",
        "AccountDescription": "Key account",
        "CustomerAccountId": 300000051234002,
        "PartyNumber": "20002",
        "SiteName": "Purchase NY",
        "SiteUseId": 5003,
        "PrimarySite": "Y",
        "SetName": "COMMON",
        "TaxpayerIdentificationNumber": "12-3456789",
        "TaxRegistrationNumber": None,
    },
)


def item_row(
    item_id: int, number: str, description: str, item_class: str, updated: str, status: str = "Active"
) -> dict[str, Any]:
    return {
        "ItemId": item_id,
        "ItemNumber": number,
        "ItemDescription": description,
        "ItemClass": item_class,
        "OrganizationCode": "M1",
        "OrganizationId": 207,
        "ItemStatusValue": status,
        "LifecyclePhaseValue": "Production",
        "PrimaryUOMValue": "Each",
        "CustomerOrderFlag": True,
        "CustomerOrderEnabledFlag": True,
        "CreationDate": "2025-01-15T08:00:00+00:00",
        # The SOAP Item V2 who-columns' name (docs/reference/fusion.md §12.2): the best-supported guess for itemsV2.
        "LastUpdateDateTime": updated,
    }


SEED_ITEMS = (
    item_row(300100050001001, "WS12-M-Orange", "Radiant Tee M Orange", "Apparel", "2026-09-01T10:00:00+00:00"),
    item_row(300100050001002, "MH01-XS-Black", "Chaz Kangeroo Hoodie XS Black", "Apparel", "2026-09-02T11:30:00+00:00"),
    item_row(300100050001003, "24-MB01", "Joust Duffle Bag", "Bags", "2026-09-03T09:15:00+00:00"),
    item_row(300100050001004, "SKU-LAPTOP-15", "Laptop 15in", "Computers", "2026-10-01T14:53:51+00:00"),
    item_row(300100050001005, "SKU-DOCK-USB4", "USB4 docking station", "Computers", "2026-10-05T07:20:00+00:00"),
    item_row(300100050001006, "SKU-WARRANTY-2Y", "Two-year warranty", "Services", "2026-10-05T07:20:00+00:00"),
    item_row(
        300100050001007, "SKU-OLD-MODEM", "Dial-up modem", "Computers", "2026-08-30T16:00:00+00:00", status="Inactive"
    ),
)


def scale_items(count: int) -> list[dict[str, Any]]:
    """`count` generated items of organization M1, FUS-000001 on, stamped a minute apart from 2026-01-01 (the mock
    Commerce's scale seed has a product for each of these SKUs)."""
    return [
        item_row(
            500000000 + n,
            f"FUS-{n:06d}",
            f"Generated item {n}",
            "Generated",
            f"2026-01-{1 + (n // 1440) % 28:02d}T{(n // 60) % 24:02d}:{n % 60:02d}:00+00:00",
        )
        for n in range(1, count + 1)
    ]


def scale_customer_sites(count: int) -> list[dict[str, Any]]:
    """`count` generated customer accounts 400001 on, one primary bill-to site each (the mock Commerce's scale seed
    has a customer whose erp_account_number names each of these accounts)."""
    return [
        {
            "CustomerName": f"Generated Customer {n}",
            "AccountNumber": str(400000 + n),
            "AccountDescription": "Generated",
            "CustomerAccountId": 300000060000000 + n,
            "PartyNumber": str(400000 + n),
            "SiteName": f"GEN-{n:05d}",
            "SiteUseId": 700000 + n,
            "PrimarySite": "Y",
            "SetName": "COMMON",
            "TaxpayerIdentificationNumber": None,
            "TaxRegistrationNumber": None,
        }
        for n in range(1, count + 1)
    ]


INVOICE_ATTRIBUTES = (
    "CustomerTransactionId",
    "BusinessUnit",
    "TransactionSource",
    "TransactionType",
    "TransactionNumber",
    "TransactionDate",
    "AccountingDate",
    "BillingDate",
    "DueDate",
    "BillToCustomerNumber",
    "BillToCustomerName",
    "BillToSite",
    "BillToContact",
    "ShipToCustomerName",
    "ShipToCustomerNumber",
    "ShipToSite",
    "ShipToContact",
    "PaymentTerms",
    "InvoiceCurrencyCode",
    "ConversionRateType",
    "ConversionDate",
    "ConversionRate",
    "FreightAmount",
    "EnteredAmount",
    "CrossReference",
    "DocumentNumber",
    "PurchaseOrder",
    "PurchaseOrderDate",
    "PurchaseOrderRevision",
    "Comments",
    "InternalNotes",
    "SpecialInstructions",
    "ReceiptMethod",
    "FirstPartyRegistrationNumber",
    "ThirdPartyRegistrationNumber",
    "StructuredPaymentReference",
    "InvoiceStatus",
    "AllowCompletion",
    "BillToPartyId",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
INVOICE_CHILDREN = (
    "receivablesInvoiceLines",
    "receivablesInvoiceDistributions",
    "receivablesInvoiceDFF",
    "receivablesInvoiceGdf",
    "receivablesInvoiceTransactionDFF",
    "receivablesInvoiceInstallments",
    "notes",
    "attachments",
)
INVOICE_READ_ONLY = (
    "CustomerTransactionId",
    "EnteredAmount",
    "BillToPartyId",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
CREDIT_MEMO_ATTRIBUTES = (
    "CustomerTransactionId",
    "BusinessUnit",
    "TransactionSource",
    "TransactionType",
    "TransactionNumber",
    "TransactionDate",
    "AccountingDate",
    "CreditMemoCurrency",
    "ConversionRateType",
    "ConversionDate",
    "ConversionRate",
    "FreightCreditAmount",
    "EnteredAmount",
    "BillToCustomerName",
    "BillToCustomerNumber",
    "BillToSite",
    "ShipToCustomerName",
    "ShipToCustomerNumber",
    "ShipToCustomerSite",
    "CreditMemoComments",
    "CrossReference",
    "PaymentTerms",
    "InvoiceStatus",
    "LegalEntityIdentifier",
    "CreationDate",
    "LastUpdateDate",
)
CREDIT_MEMO_CHILDREN = ("receivablesCreditMemoLines", "receivablesCreditMemoDistributions", "notes", "attachments")

# The invoice and credit memo line attributes: from Oracle's examples (LineNumber, Description, Quantity,
# UnitSellingPrice, TaxClassificationCode, AllocatedFreightAmount, the tax lines; on credit memos LineDescription,
# LineQuantityCredit, LineCreditReason and the tax determinants) and the community clients (MemoLine, ItemNumber,
# UnitOfMeasure, LineAmount, LineAmountIncludesTax, TaxExemptionHandling, SalesOrder, the accounting rule).
INVOICE_LINE_ATTRIBUTES = (
    "LineNumber",
    "Description",
    "Quantity",
    "UnitSellingPrice",
    "LineAmount",
    "MemoLine",
    "ItemNumber",
    "UnitOfMeasure",
    "TaxClassificationCode",
    "LineAmountIncludesTax",
    "TaxExemptionHandling",
    "AllocatedFreightAmount",
    "SalesOrder",
    "AccountingRule",
    "AccountingRuleDuration",
    "RuleStartDate",
    "RuleEndDate",
    "receivablesInvoiceLineTaxLines",
    "receivablesInvoiceLineDFF",
    "receivablesInvoiceLineGdf",
    "receivablesInvoiceLineTransactionDFF",
)
CREDIT_MEMO_LINE_ATTRIBUTES = (
    "LineNumber",
    "LineDescription",
    "LineQuantityCredit",
    "UnitSellingPrice",
    "MemoLine",
    "ItemNumber",
    "TaxClassificationCode",
    "LineCreditReason",
    "TransactionBusinessCategory",
    "LineIntendedUse",
    "LineProductType",
    "LineProductCategory",
    "UserDefinedFiscalClassification",
    "receivablesCreditMemoLineTaxLines",
    "receivablesCreditMemoLineDFF",
)
# A manual tax line: TaxRegimeCode, TaxRateCode and TaxAmount in every Oracle example (required here, a rule of
# ours: Oracle marks none required); Tax and TaxInclusiveIndicator in Oracle's child schema; TaxStatusCode,
# TaxJurisdictionCode and TaxRate in community clients. Anything else is refused.
TAX_LINE_REQUIRED = ("TaxRegimeCode", "TaxRateCode", "TaxAmount")
TAX_LINE_ATTRIBUTES = (
    *TAX_LINE_REQUIRED,
    "Tax",
    "TaxStatusCode",
    "TaxJurisdictionCode",
    "TaxRate",
    "TaxInclusiveIndicator",
)

# The pod's tax setup: (regime, tax, status, rate code) -> percent, and the tax classification codes (what Fusion
# computes the tax from) with the rate each one resolves to. Oracle's examples use FUS_STCC_REGIME-UES / VAT20.
TAX_RATES = {
    ("US SALES AND USE TAX", "US SALES TAX", "STANDARD", "STD"): "8.25",
    ("US SALES AND USE TAX", "US SALES TAX", "EXEMPT", "EXEMPT"): "0",
    ("US SALES AND USE TAX", "TX STATE SALES TAX", "STANDARD", "TX_STATE"): "6.25",
    ("US SALES AND USE TAX", "AUSTIN CITY SALES TAX", "STANDARD", "AUSTIN_CITY"): "2",
    ("FUS_STCC_REGIME-UES", "VAT", "STANDARD", "VAT20"): "20",
    ("FUS_STCC_REGIME-UES", "VAT", "REDUCED", "VAT5"): "5",
    ("FUS_STCC_REGIME-UES", "VAT", "ZERO", "VAT0"): "0",
}
TAX_CLASSIFICATIONS = {
    "US_STD": ("US SALES AND USE TAX", "STD"),
    "US_EXEMPT": ("US SALES AND USE TAX", "EXEMPT"),
    "VAT20": ("FUS_STCC_REGIME-UES", "VAT20"),
    "VAT5": ("FUS_STCC_REGIME-UES", "VAT5"),
    "VAT0": ("FUS_STCC_REGIME-UES", "VAT0"),
}

# currencyConversionTypesLOV of the pod, and the ledger of business unit Vision Operations (ledgersLOV).
CONVERSION_RATE_TYPES = ("Corporate", "Spot", "User")
LEDGER_CURRENCY = "USD"
SEED_LEDGERS = (
    {
        "LedgerId": 300000046975971,
        "Name": "Vision Operations (USA)",
        "CurrencyCode": LEDGER_CURRENCY,
        "ChartOfAccountsId": 5237,
        "PeriodSetName": "Accounting",
        "AccountedPeriodType": "Month",
        "LedgerCategoryCode": "PRIMARY",
    },
)
