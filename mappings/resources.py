"""django-import-export resources: one per rule model, used by the admin's Import/Export buttons and by the
import_rules / export_rules commands, so a file means the same thing wherever it is loaded.

A row is identified by its connection (slug), what it matches and its effective_from date, never by a
database id, so files move between environments. Unchanged rows are skipped: importing a fresh export
changes nothing and writes no audit events. Every save goes through mappings.services.rule_save (validated,
audited with before and after)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from connector.models import Connection

from . import rules, services
from .models import AccountTemplate, CustomerRule, ProductRule, RuleBase, SegmentLayout, StoreRule, TaxRule

DATE_FORMAT = "%Y-%m-%d"


class TextWidget(widgets.Widget):
    """Text cells. A spreadsheet may turn a customer id or SKU into a number: 1042.0 comes back as "1042"."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class YesNoWidget(widgets.Widget):
    TRUE = {"yes", "y", "true", "1", "on"}
    FALSE = {"no", "n", "false", "0", "off"}

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return bool(value)
        text = ("" if value is None else str(value)).strip().lower()
        if text == "":
            return True  # a new row is enabled unless it says otherwise
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(f"{value!r} is not yes or no.")

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "yes" if value else "no"


class DayWidget(widgets.Widget):
    """ISO dates (2026-01-31); spreadsheet date cells are accepted too."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> date | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value).strip(), DATE_FORMAT).date()
        except ValueError:
            raise ValueError(f"{value!r} is not a date written as YYYY-MM-DD.")

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return value.strftime(DATE_FORMAT) if value else ""


class SegmentValuesWidget(widgets.Widget):
    """Segment values as "account=4110; channel=20" (a JSON object is accepted as well)."""

    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> dict[str, str]:
        text = "" if value is None else str(value).strip()
        if not text:
            return {}
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc.msg}")
            if not isinstance(data, dict):
                raise ValueError("segment values must be name=value pairs")
            return {str(k).strip(): str(v).strip() for k, v in data.items()}
        return rules.parse_segment_values(text)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return rules.format_segment_values(value or {})


class ConnectionWidget(widgets.Widget):
    def clean(self, value: Any, row: Any = None, **kwargs: Any) -> Connection:
        slug = ("" if value is None else str(value)).strip()
        if not slug:
            raise ValueError("Name the connection (its slug) in the connection column.")
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            raise ValueError(f"There is no connection {slug!r}.")
        return connection

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return value.slug if value is not None else ""


def _text(name: str) -> fields.Field:
    return fields.Field(attribute=name, column_name=name, widget=TextWidget())


class RuleResource(resources.ModelResource):
    kind = fields.Field(column_name="kind", readonly=True)
    connection = fields.Field(attribute="connection", column_name="connection", widget=ConnectionWidget())
    effective_from = fields.Field(attribute="effective_from", column_name="effective_from", widget=DayWidget())
    effective_to = fields.Field(attribute="effective_to", column_name="effective_to", widget=DayWidget())
    enabled = fields.Field(attribute="enabled", column_name="enabled", widget=YesNoWidget())
    notes = fields.Field(attribute="notes", column_name="notes", widget=TextWidget())

    def __init__(self, connection: Connection | None = None, actor: Any = "system:import", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.actor = actor
        self._layout_orders: dict[int, tuple[str, ...]] = {}

    @property
    def model(self) -> type[RuleBase]:
        return self._meta.model

    def get_queryset(self):
        query = self.model._default_manager.select_related("connection")
        return query.filter(connection=self.connection) if self.connection is not None else query

    def dehydrate_kind(self, obj: RuleBase) -> str:
        return self.model.KIND

    def _segment_order(self, obj: RuleBase) -> tuple[str, ...]:
        if obj.connection_id not in self._layout_orders:
            names: list[str] = []
            for layout in SegmentLayout.objects.filter(connection_id=obj.connection_id).order_by("effective_from"):
                names.extend(n for n in layout.names if n not in names)
            self._layout_orders[obj.connection_id] = tuple(names)
        return self._layout_orders[obj.connection_id]

    def dehydrate_segments(self, obj: RuleBase) -> str:
        return rules.format_segment_values(getattr(obj, "segments", None) or {}, self._segment_order(obj))

    def before_import(self, dataset, **kwargs: Any) -> None:
        # A file may leave out identifying columns that are blank anyway (effective_from, the match_value of a
        # default rule, the connection when the import names it); other absent columns keep their values.
        for name in self.get_import_id_fields():
            column = self.fields[name].column_name
            if column not in (dataset.headers or []):
                if dataset.height:
                    dataset.append_col([""] * dataset.height, header=column)
                else:
                    dataset.headers = [*(dataset.headers or []), column]

    def before_import_row(self, row: dict, **kwargs: Any) -> None:
        kind = str(row.get("kind") or "").strip()
        if kind and kind != self.model.KIND:
            raise ValidationError(f"This row is a {kind!r} row; this import takes {self.model.KIND!r} rows.")
        if self.connection is not None:
            named = str(row.get("connection") or "").strip()
            if named and named != self.connection.slug:
                raise ValidationError(
                    f"The row is for connection {named!r}; this import is for {self.connection.slug!r}."
                )
            row["connection"] = self.connection.slug

    def save_instance(self, instance: RuleBase, is_create: bool, row: dict, **kwargs: Any) -> None:
        # Always inside a transaction (Meta.use_transactions): a dry run rolls the saves and their audit back.
        services.rule_save(rule=instance, actor=kwargs.get("user") or self.actor, via="import")


COMMON = ("effective_from", "effective_to", "enabled", "notes")


class SegmentLayoutResource(RuleResource):
    segment_names = _text("segment_names")
    delimiter = fields.Field(attribute="delimiter", column_name="delimiter", widget=TextWidget())
    winners = fields.Field(attribute="winners", column_name="winners", widget=SegmentValuesWidget())

    def dehydrate_winners(self, obj: SegmentLayout) -> str:
        return rules.format_segment_values(obj.winners or {}, obj.names)

    class Meta:
        model = SegmentLayout
        fields = ("kind", "connection", "segment_names", "delimiter", "winners", *COMMON)
        export_order = fields
        import_id_fields = SegmentLayout.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


class AccountTemplateResource(RuleResource):
    account_class = _text("account_class")
    combination = _text("combination")
    segments = fields.Field(attribute="segments", column_name="segments", widget=SegmentValuesWidget())

    class Meta:
        model = AccountTemplate
        fields = ("kind", "connection", "account_class", "combination", "segments", *COMMON)
        export_order = fields
        import_id_fields = AccountTemplate.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


class StoreRuleResource(RuleResource):
    match_type = _text("match_type")
    match_value = _text("match_value")
    business_unit = _text("business_unit")
    transaction_source = _text("transaction_source")
    transaction_type = _text("transaction_type")
    credit_memo_transaction_type = _text("credit_memo_transaction_type")
    currency_mode = _text("currency_mode")
    conversion_rate_type = _text("conversion_rate_type")
    ledger_currency = _text("ledger_currency")
    segments = fields.Field(attribute="segments", column_name="segments", widget=SegmentValuesWidget())

    class Meta:
        model = StoreRule
        fields = (
            "kind",
            "connection",
            "match_type",
            "match_value",
            "business_unit",
            "transaction_source",
            "transaction_type",
            "credit_memo_transaction_type",
            "currency_mode",
            "conversion_rate_type",
            "ledger_currency",
            "segments",
            *COMMON,
        )
        export_order = fields
        import_id_fields = StoreRule.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


class CustomerRuleResource(RuleResource):
    match_type = _text("match_type")
    match_value = _text("match_value")
    bill_to_customer_number = _text("bill_to_customer_number")
    bill_to_site = _text("bill_to_site")
    segments = fields.Field(attribute="segments", column_name="segments", widget=SegmentValuesWidget())

    class Meta:
        model = CustomerRule
        fields = (
            "kind",
            "connection",
            "match_type",
            "match_value",
            "bill_to_customer_number",
            "bill_to_site",
            "segments",
            *COMMON,
        )
        export_order = fields
        import_id_fields = CustomerRule.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


class ProductRuleResource(RuleResource):
    match_type = _text("match_type")
    match_value = _text("match_value")
    item_number = _text("item_number")
    memo_line = _text("memo_line")
    segments = fields.Field(attribute="segments", column_name="segments", widget=SegmentValuesWidget())

    class Meta:
        model = ProductRule
        fields = ("kind", "connection", "match_type", "match_value", "item_number", "memo_line", "segments", *COMMON)
        export_order = fields
        import_id_fields = ProductRule.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


class TaxRuleResource(RuleResource):
    match_type = _text("match_type")
    match_value = _text("match_value")
    country = _text("country")
    tax_regime_code = _text("tax_regime_code")
    tax = _text("tax")
    tax_status_code = _text("tax_status_code")
    tax_rate_code = _text("tax_rate_code")
    tax_jurisdiction_code = _text("tax_jurisdiction_code")
    tax_classification_code = _text("tax_classification_code")

    class Meta:
        model = TaxRule
        fields = (
            "kind",
            "connection",
            "match_type",
            "match_value",
            "country",
            "tax_regime_code",
            "tax",
            "tax_status_code",
            "tax_rate_code",
            "tax_jurisdiction_code",
            "tax_classification_code",
            *COMMON,
        )
        export_order = fields
        import_id_fields = TaxRule.natural_key_fields()
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True


# Import order matters: templates are checked against the layout, rules against the layout's segment names.
RESOURCES: dict[str, type[RuleResource]] = {
    "layout": SegmentLayoutResource,
    "template": AccountTemplateResource,
    "store": StoreRuleResource,
    "customer": CustomerRuleResource,
    "product": ProductRuleResource,
    "tax": TaxRuleResource,
}
