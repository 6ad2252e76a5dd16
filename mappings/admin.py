"""Mapping rules in the admin, for Finance: edit, import and export (CSV, XLSX). Every change goes through
mappings.services (validated, audited with before and after)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from . import rules
from .models import AccountTemplate, CustomerRule, ProductRule, RuleBase, SegmentLayout, StoreRule, TaxRule
from .resources import (
    AccountTemplateResource,
    CustomerRuleResource,
    ProductRuleResource,
    SegmentLayoutResource,
    StoreRuleResource,
    TaxRuleResource,
)
from .services import rule_delete, rule_save


class SegmentValuesField(forms.CharField):
    """Segment values typed as "account=4110; channel=20", stored as a JSON object."""

    def __init__(self, *, placeholder: str = "account=4110; channel=20", **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 70, "placeholder": placeholder}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return rules.format_segment_values(value)
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        if isinstance(value, dict):
            return value
        text = super().to_python(value) or ""
        try:
            return rules.parse_segment_values(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def _form(model: type[RuleBase], **extra: forms.Field) -> type[forms.ModelForm]:
    attrs: dict[str, Any] = {"Meta": type("Meta", (), {"model": model, "fields": "__all__"}), **extra}
    return type(f"{model.__name__}Form", (forms.ModelForm,), attrs)


class RuleAdmin(ImportExportModelAdmin):
    list_filter: tuple[Any, ...] = ("connection", "enabled")
    readonly_fields = ("updated_at",)
    list_per_page = 100
    import_formats = [CSV, XLSX]
    export_formats = [CSV, XLSX]

    def has_import_permission(self, request) -> bool:
        # An import adds and changes rules: it needs both permissions, not just access to the admin.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def save_model(self, request, obj, form, change) -> None:
        rule_save(rule=obj, actor=request.user, via="admin")

    def delete_model(self, request, obj) -> None:
        rule_delete(rule=obj, actor=request.user, via="admin")

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            rule_delete(rule=obj, actor=request.user, via="admin")

    def get_import_resource_kwargs(self, request, **kwargs):
        return {**super().get_import_resource_kwargs(request, **kwargs), "actor": request.user}

    def get_import_data_kwargs(self, **kwargs):
        # The confirmed import is all or nothing, as the dry run promised: a row that fails validation at
        # that point rolls every row back.
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    @admin.display(description="Effective")
    def effective(self, obj: RuleBase) -> str:
        return f"{obj.effective_from or 'always'} to {obj.effective_to or 'open'}"

    @admin.display(description="Segment values")
    def segment_values(self, obj: RuleBase) -> str:
        return rules.format_segment_values(getattr(obj, "segments", None) or {})


@admin.register(CustomerRule)
class CustomerRuleAdmin(RuleAdmin):
    form = _form(CustomerRule, segments=SegmentValuesField(placeholder="company=01; channel=20"))
    resource_classes = [CustomerRuleResource]
    list_display = (
        "match_type",
        "match_value",
        "bill_to_customer_number",
        "bill_to_site",
        "segment_values",
        "effective",
        "enabled",
        "synced_from_fusion",
        "connection",
    )
    list_filter = ("connection", "match_type", "enabled", "synced_from_fusion")
    search_fields = ("match_value", "bill_to_customer_number", "bill_to_site", "notes")


@admin.register(ProductRule)
class ProductRuleAdmin(RuleAdmin):
    form = _form(ProductRule, segments=SegmentValuesField(placeholder="account=4110; product=15"))
    resource_classes = [ProductRuleResource]
    list_display = (
        "match_type",
        "match_value",
        "item_number",
        "memo_line",
        "segment_values",
        "effective",
        "enabled",
        "connection",
    )
    list_filter = ("connection", "match_type", "enabled")
    search_fields = ("match_value", "item_number", "memo_line", "notes")


@admin.register(StoreRule)
class StoreRuleAdmin(RuleAdmin):
    form = _form(StoreRule, segments=SegmentValuesField(placeholder="company=01"))
    resource_classes = [StoreRuleResource]
    list_display = (
        "match_type",
        "match_value",
        "business_unit",
        "transaction_source",
        "currency_mode",
        "segment_values",
        "effective",
        "enabled",
        "connection",
    )
    list_filter = ("connection", "match_type", "enabled")
    search_fields = ("match_value", "business_unit", "transaction_source", "notes")


@admin.register(TaxRule)
class TaxRuleAdmin(RuleAdmin):
    form = _form(TaxRule)
    resource_classes = [TaxRuleResource]
    list_display = (
        "match_type",
        "match_value",
        "country",
        "tax_regime_code",
        "tax_rate_code",
        "tax_classification_code",
        "effective",
        "enabled",
        "connection",
    )
    list_filter = ("connection", "match_type", "enabled")
    search_fields = ("match_value", "tax_regime_code", "tax_rate_code", "tax_classification_code", "notes")


@admin.register(AccountTemplate)
class AccountTemplateAdmin(RuleAdmin):
    form = _form(AccountTemplate, segments=SegmentValuesField(placeholder="company=01; account=4000; ..."))
    resource_classes = [AccountTemplateResource]
    list_display = ("account_class", "combination", "segment_values", "effective", "enabled", "connection")
    list_filter = ("connection", "account_class", "enabled")


@admin.register(SegmentLayout)
class SegmentLayoutAdmin(RuleAdmin):
    form = _form(SegmentLayout, winners=SegmentValuesField(placeholder="account=product; channel=customer"))
    resource_classes = [SegmentLayoutResource]
    list_display = ("segment_names", "delimiter", "winner_values", "effective", "enabled", "connection")

    @admin.display(description="Winners")
    def winner_values(self, obj: SegmentLayout) -> str:
        return rules.format_segment_values(obj.winners or {}, obj.names)
