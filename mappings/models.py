"""GL mapping rules, per connection, edited by Finance in the admin or kept in CSV/XLSX under version control.

Rows here are plain configuration. mappings.services writes them (audited, before and after) and turns them
into the frozen snapshots mappings.rules resolves a document against. clean() holds the validation that needs
the database (overlapping periods, segment names of the layout); the precedence lives in mappings.rules.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from connector.models import Connection

from . import rules


class RuleBase(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE)
    effective_from = models.DateField(null=True, blank=True, help_text="First day it counts (blank: always).")
    effective_to = models.DateField(null=True, blank=True, help_text="Last day it counts, inclusive (blank: open).")
    enabled = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Short name used in audit actions, file "kind" columns and the export_rules --kind option.
    KIND = ""
    # The fields that say what a row matches (compared case-insensitively). With the connection and
    # effective_from they identify a row in an import file.
    MATCH_KEY: tuple[str, ...] = ()
    # The JSON field of segment values checked against the layout ("" for none).
    SEGMENT_FIELD = "segments"

    class Meta:
        abstract = True

    @classmethod
    def natural_key_fields(cls) -> tuple[str, ...]:
        return ("connection", *cls.MATCH_KEY, "effective_from")

    def natural_key_text(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)!s}" for name in self.MATCH_KEY) or self.KIND

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list[str]] = {}
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            errors.setdefault("effective_to", []).append("The last day comes before the first day.")
        self._clean_rule(errors)
        if self.connection_id:
            self._clean_segments(errors)
            if not errors:
                self._clean_overlap(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        """Per-model checks; add messages to errors."""

    def _same_key_rows(self) -> models.QuerySet:
        query = type(self)._default_manager.filter(connection_id=self.connection_id, enabled=True)
        for name in self.MATCH_KEY:
            value = getattr(self, name)
            query = query.filter(**{f"{name}__iexact": value})
        return query.exclude(pk=self.pk) if self.pk else query

    def _clean_overlap(self, errors: dict[str, list[str]]) -> None:
        """Two enabled rows with the same match may not both count on the same day: the resolver could not say
        which one Finance meant."""
        if not self.enabled:
            return
        for other in self._same_key_rows():
            if _periods_overlap(self.effective_from, self.effective_to, other.effective_from, other.effective_to):
                period = f"{other.effective_from or 'always'} to {other.effective_to or 'open'}"
                errors.setdefault("effective_from", []).append(
                    f"An enabled {self._meta.verbose_name} for {self.natural_key_text()} already counts from "
                    f"{period}; end that one first or choose dates that do not overlap."
                )
                return

    def _clean_segments(self, errors: dict[str, list[str]]) -> None:
        if not self.SEGMENT_FIELD:
            return
        values = getattr(self, self.SEGMENT_FIELD)
        if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
            errors.setdefault(self.SEGMENT_FIELD, []).append("Segment values are name=value pairs.")
            return
        layouts = list(SegmentLayout.objects.filter(connection_id=self.connection_id))
        known = {name for layout in layouts for name in layout.names}
        for name, value in values.items():
            text = str(value)
            if not text.strip():
                errors.setdefault(self.SEGMENT_FIELD, []).append(f"Segment {name} has no value.")
            if known and name not in known:
                errors.setdefault(self.SEGMENT_FIELD, []).append(
                    f"{name!r} is not a segment of this connection's layout ({', '.join(sorted(known))})."
                )
            for layout in layouts:
                if layout.delimiter and layout.delimiter in text:
                    errors.setdefault(self.SEGMENT_FIELD, []).append(
                        f"The value of {name} contains the delimiter {layout.delimiter!r}."
                    )

    def audit_values(self) -> dict[str, Any]:
        """The editable fields, as audited before and after a change."""
        out: dict[str, Any] = {}
        for f in self._meta.concrete_fields:
            if f.name in ("id", "updated_at"):
                continue
            value = getattr(self, f.attname)
            out[f.name if f.name != "connection" else "connection_id"] = (
                value.isoformat() if hasattr(value, "isoformat") else value
            )
        return out


def natural_key_constraints(model_name: str, message: str, *key: Any) -> list[models.BaseConstraint]:
    """Unique (connection, key..., effective_from), with a blank effective_from counting as one value.

    Two constraints rather than NULLS NOT DISTINCT, which SQLite (the no-configuration run) lacks: one for
    dated rows, a partial one for undated rows."""
    return [
        models.UniqueConstraint(
            "connection",
            *key,
            "effective_from",
            name=f"mappings_{model_name}_key_dated",
            violation_error_message=message,
        ),
        models.UniqueConstraint(
            "connection",
            *key,
            condition=models.Q(effective_from__isnull=True),
            name=f"mappings_{model_name}_key_undated",
            violation_error_message=message,
        ),
    ]


def _periods_overlap(a_from, a_to, b_from, b_to) -> bool:
    """Inclusive date ranges; None is open on that side."""
    a_starts_in_time = a_from is None or b_to is None or a_from <= b_to
    b_starts_in_time = b_from is None or a_to is None or b_from <= a_to
    return a_starts_in_time and b_starts_in_time


def _match_clean(rule: Any, errors: dict[str, list[str]]) -> None:
    if rule.match_type == "default":
        if rule.match_value:
            errors.setdefault("match_value", []).append("A default rule matches everything: leave the value empty.")
    elif not (rule.match_value or "").strip():
        errors.setdefault("match_value", []).append("Say what the rule matches (for example a SKU or a group id).")
    rule.match_value = (rule.match_value or "").strip()


class CustomerRule(RuleBase):
    class MatchType(models.TextChoices):
        CUSTOMER_ID = "customer_id", "Commerce customer id"
        EMAIL = "email", "Email"
        COMPANY = "company", "B2B company"
        CUSTOMER_GROUP = "customer_group", "Customer group id"
        DEFAULT = "default", "Default (any customer)"

    match_type = models.CharField(max_length=20, choices=MatchType.choices)
    match_value = models.CharField(max_length=255, blank=True)
    bill_to_customer_number = models.CharField(
        max_length=30, help_text="Fusion customer account number (BillToCustomerNumber)"
    )
    bill_to_site = models.CharField(max_length=150, blank=True, help_text="Fusion bill-to site number or name")
    segments = models.JSONField(
        default=dict, blank=True, help_text="GL segment values the customer decides, e.g. channel=20"
    )
    synced_from_fusion = models.BooleanField(
        default=False,
        help_text="Kept by the sync from Fusion: the Fusion account linked to this Commerce customer, with the "
        "segment values the other customer rules give it. Untick to take the rule over by hand.",
    )

    KIND = "customer"
    MATCH_KEY = ("match_type", "match_value")

    class Meta:
        ordering = ["connection", "match_type", "match_value", "effective_from"]
        constraints = natural_key_constraints(
            "customerrule",
            "A customer rule with this match and start date already exists.",
            "match_type",
            Lower("match_value"),
        )

    def __str__(self) -> str:
        what = "default" if self.match_type == "default" else f"{self.match_type}={self.match_value}"
        return f"customer {what} -> {self.bill_to_customer_number}"

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        _match_clean(self, errors)
        self.bill_to_customer_number = (self.bill_to_customer_number or "").strip()


class ProductRule(RuleBase):
    class MatchType(models.TextChoices):
        SKU = "sku", "SKU"
        SKU_PATTERN = "sku_pattern", "SKU pattern (e.g. LAP-*)"
        ATTRIBUTE_SET = "attribute_set", "Attribute set id"
        CATEGORY = "category", "Category id"
        DEFAULT = "default", "Default (any product)"

    match_type = models.CharField(max_length=20, choices=MatchType.choices)
    match_value = models.CharField(max_length=255, blank=True)
    item_number = models.CharField(max_length=300, blank=True, help_text="Fusion item number (optional)")
    memo_line = models.CharField(max_length=100, blank=True, help_text="Fusion memo line (optional)")
    segments = models.JSONField(
        default=dict, blank=True, help_text="GL segment values the product decides, e.g. account=4110"
    )

    KIND = "product"
    MATCH_KEY = ("match_type", "match_value")

    class Meta:
        ordering = ["connection", "match_type", "match_value", "effective_from"]
        constraints = natural_key_constraints(
            "productrule",
            "A product rule with this match and start date already exists.",
            "match_type",
            Lower("match_value"),
        )

    def __str__(self) -> str:
        what = "default" if self.match_type == "default" else f"{self.match_type}={self.match_value}"
        return f"product {what}"

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        _match_clean(self, errors)
        pattern = self.match_value
        if self.match_type == self.MatchType.SKU_PATTERN and pattern and not any(ch in pattern for ch in "*?["):
            errors.setdefault("match_value", []).append(
                "A SKU pattern needs a wildcard (* or ?), e.g. LAP-*; for one SKU choose the SKU match."
            )


class StoreRule(RuleBase):
    class MatchType(models.TextChoices):
        STORE = "store", "Commerce store id"
        STORE_CODE = "store_code", "Commerce store code"
        WEBSITE = "website", "Commerce website id"
        DEFAULT = "default", "Default (any store)"

    class CurrencyMode(models.TextChoices):
        KEEP = rules.CURRENCY_KEEP, "Keep the order currency (Fusion's default conversion)"
        CONVERT = rules.CURRENCY_CONVERT, "Convert to the ledger currency with the rate type below"

    match_type = models.CharField(max_length=20, choices=MatchType.choices)
    match_value = models.CharField(max_length=255, blank=True)
    business_unit = models.CharField(max_length=240, blank=True, help_text="Blank: the connection's")
    transaction_source = models.CharField(max_length=100, blank=True, help_text="Blank: the connection's")
    transaction_type = models.CharField(max_length=100, blank=True, help_text="Blank: the connection's")
    credit_memo_transaction_type = models.CharField(max_length=100, blank=True, help_text="Blank: the connection's")
    currency_mode = models.CharField(max_length=16, choices=CurrencyMode.choices, default=CurrencyMode.KEEP)
    conversion_rate_type = models.CharField(
        max_length=30, blank=True, help_text="Fusion rate type, e.g. Corporate, Spot or User (the Commerce rate)"
    )
    ledger_currency = models.CharField(max_length=3, blank=True, help_text="Blank: the connection's currency")
    segments = models.JSONField(
        default=dict, blank=True, help_text="Legal-entity segment values for this store, e.g. company=01"
    )

    KIND = "store"
    MATCH_KEY = ("match_type", "match_value")

    class Meta:
        ordering = ["connection", "match_type", "match_value", "effective_from"]
        constraints = natural_key_constraints(
            "storerule",
            "A store rule with this match and start date already exists.",
            "match_type",
            Lower("match_value"),
        )

    def __str__(self) -> str:
        what = "default" if self.match_type == "default" else f"{self.match_type}={self.match_value}"
        return f"store {what}"

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        _match_clean(self, errors)
        if self.currency_mode == self.CurrencyMode.CONVERT and not self.conversion_rate_type.strip():
            errors.setdefault("conversion_rate_type", []).append("Converting needs a Fusion rate type.")
        if self.ledger_currency:
            self.ledger_currency = self.ledger_currency.strip().upper()
            if len(self.ledger_currency) != 3 or not self.ledger_currency.isalpha():
                errors.setdefault("ledger_currency", []).append("A currency is a three-letter ISO code.")


class TaxRule(RuleBase):
    """Which Fusion tax a Commerce tax is. The codes are the pod's (Tax > Manage Tax Regimes, Taxes, Tax Rates
    and the tax classification codes of Receivables); Oracle's example: regime FUS_STCC_REGIME-UES, rate VAT20."""

    class MatchType(models.TextChoices):
        TAX_CODE = "tax_code", "Commerce tax code or title (e.g. US-CA-*-Rate 1)"
        RATE = "rate", "Rate in percent (e.g. 8.25), in the country below"
        DEFAULT = "default", "Default (any tax)"

    match_type = models.CharField(max_length=20, choices=MatchType.choices)
    match_value = models.CharField(max_length=255, blank=True)
    country = models.CharField(
        max_length=2, blank=True, help_text="For a rate rule: the tax country (two letters, e.g. US); blank: any"
    )
    tax_regime_code = models.CharField(max_length=30, blank=True, help_text="Fusion tax regime code")
    tax = models.CharField(max_length=80, blank=True, help_text="Fusion tax code (optional)")
    tax_status_code = models.CharField(max_length=30, blank=True, help_text="Fusion tax status code (optional)")
    tax_rate_code = models.CharField(max_length=150, blank=True, help_text="Fusion tax rate code")
    tax_jurisdiction_code = models.CharField(
        max_length=30, blank=True, help_text="Fusion tax jurisdiction code, where the rate needs one"
    )
    tax_classification_code = models.CharField(
        max_length=50, blank=True, help_text="The invoice line's tax classification code (what Fusion computes from)"
    )

    KIND = "tax"
    MATCH_KEY = ("match_type", "match_value", "country")
    SEGMENT_FIELD = ""

    class Meta:
        ordering = ["connection", "match_type", "match_value", "country", "effective_from"]
        constraints = natural_key_constraints(
            "taxrule",
            "A tax rule with this match, country and start date already exists.",
            "match_type",
            Lower("match_value"),
            Lower("country"),
        )

    def __str__(self) -> str:
        what = "default" if self.match_type == "default" else f"{self.match_type}={self.match_value}"
        where = f" in {self.country}" if self.country else ""
        return f"tax {what}{where} -> {self.tax_regime_code or self.tax_classification_code}/{self.tax_rate_code}"

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        _match_clean(self, errors)
        for name in ("tax_regime_code", "tax", "tax_status_code", "tax_rate_code", "tax_jurisdiction_code"):
            setattr(self, name, (getattr(self, name) or "").strip())
        self.tax_classification_code = (self.tax_classification_code or "").strip()
        self.country = (self.country or "").strip().upper()
        if self.match_type == self.MatchType.RATE and self.match_value and rules.parse_rate(self.match_value) is None:
            errors.setdefault("match_value", []).append("A rate rule matches a percent, e.g. 8.25 or 20.")
        if self.country and (len(self.country) != 2 or not self.country.isalpha()):
            errors.setdefault("country", []).append("A country is its two-letter ISO code, e.g. US or GB.")
        if self.country and self.match_type != self.MatchType.RATE:
            errors.setdefault("country", []).append("Only a rate rule is for a country; leave it blank.")
        if bool(self.tax_regime_code) != bool(self.tax_rate_code):
            errors.setdefault("tax_rate_code", []).append(
                "A manual tax line names both the tax regime code and the tax rate code: give both (or neither)."
            )
        if not (self.tax_rate_code or self.tax_classification_code):
            errors.setdefault("tax_regime_code", []).append(
                "Give the tax regime and tax rate codes (manual tax lines), the tax classification code (Fusion "
                "computes the tax), or both."
            )


class AccountTemplate(RuleBase):
    class AccountClass(models.TextChoices):
        REVENUE = "revenue", "Revenue"
        RECEIVABLE = "receivable", "Receivable"
        FREIGHT = "freight", "Freight"
        TAX = "tax", "Tax"
        DISCOUNT = "discount", "Discount (when booked apart)"
        ROUNDING = "rounding", "Rounding"
        CLEARING = "clearing", "Journal clearing / offset"
        PREPAYMENT = "prepayment", "Prepayment (gift cards, store credit, reward points)"

    account_class = models.CharField(max_length=16, choices=AccountClass.choices)
    combination = models.CharField(
        max_length=250, blank=True, help_text="The full combination, e.g. 01-000-4110-0000-000 (or give segments)"
    )
    segments = models.JSONField(
        default=dict, blank=True, help_text="Or the combination as segment values, e.g. company=01; account=4110"
    )

    KIND = "template"
    MATCH_KEY = ("account_class",)

    class Meta:
        ordering = ["connection", "account_class", "effective_from"]
        constraints = natural_key_constraints(
            "accounttemplate", "A template for this account class and start date already exists.", "account_class"
        )

    def __str__(self) -> str:
        return f"{self.get_account_class_display()} template"

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        self.combination = (self.combination or "").strip()
        if bool(self.combination) == bool(self.segments):
            errors.setdefault("combination", []).append(
                "Give the account either as a combination (01-000-4110-0000-000) or as segment values, not both."
            )
            return
        if self.combination and self.connection_id:
            layouts = list(SegmentLayout.objects.filter(connection_id=self.connection_id, enabled=True))
            fits = [lay for lay in layouts if len(self.combination.split(lay.delimiter)) == len(lay.names)]
            if layouts and not fits:
                layout = layouts[0]
                errors.setdefault("combination", []).append(
                    f"The layout has {len(layout.names)} segments ({', '.join(layout.names)}) separated by "
                    f"{layout.delimiter!r}; this combination does not fit."
                )


class SegmentLayout(RuleBase):
    segment_names = models.CharField(
        max_length=500,
        help_text="Segment names in chart-of-accounts order, comma separated, e.g. company, department, account. "
        "Use the segment codes of the Fusion chart of accounts (the attribute names accountCombinationsLOV "
        "returns): the combination check looks them up by these names.",
    )
    delimiter = models.CharField(max_length=3, default="-")
    winners = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per segment, which dimension wins when customer and product both set it: customer, product "
        "or template (the template value always stands). Unlisted segments: product.",
    )

    KIND = "layout"
    SEGMENT_FIELD = ""

    class Meta:
        ordering = ["connection", "effective_from"]
        constraints = natural_key_constraints("segmentlayout", "A segment layout with this start date already exists.")

    def __str__(self) -> str:
        return f"layout {self.delimiter.join(self.names)}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in (self.segment_names or "").split(",") if name.strip())

    def _clean_rule(self, errors: dict[str, list[str]]) -> None:
        names = self.names
        self.segment_names = ", ".join(names)
        if not names:
            errors.setdefault("segment_names", []).append("Name the segments, e.g. company, department, account.")
        if len(set(names)) != len(names):
            errors.setdefault("segment_names", []).append("A segment name appears twice.")
        if len(names) > 30:
            errors.setdefault("segment_names", []).append("Fusion charts of accounts have at most 30 segments.")
        if not self.delimiter:
            errors.setdefault("delimiter", []).append("Give the delimiter (usually -).")
        for name, winner in (self.winners or {}).items():
            if winner not in rules.WINNERS:
                errors.setdefault("winners", []).append(
                    f"{name}={winner}: the winner is customer, product or template."
                )
            if names and name not in names:
                errors.setdefault("winners", []).append(f"{name!r} is not one of the segments above.")


RULE_MODELS: dict[str, type[RuleBase]] = {
    model.KIND: model for model in (SegmentLayout, AccountTemplate, StoreRule, CustomerRule, ProductRule, TaxRule)
}
