"""The connection admin: one fieldset per side, write-only secrets, audited changes (through services), and the
Test connection action."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from connector.connections import (
    connection_delete,
    connection_save,
    connection_set_enabled,
    webhook_key_delete,
    webhook_key_save,
)
from connector.forms import ConnectionForm, WebhookKeyForm
from connector.models import SECRET_FIELDS, Connection, WebhookKey

from ..diagnostics import connection_test

STATE_SUFFIX = "_state"


def _secret_state(value: str) -> str:
    return "stored" if value else "not set"


def _swap_secrets(fieldsets, secret_names) -> list:
    """For a user who may only view: show "stored" / "not set" in place of each secret field."""

    def swap(name):
        if isinstance(name, list | tuple):
            return tuple(swap(n) for n in name)
        return f"{name}{STATE_SUFFIX}" if name in secret_names else name

    return [(title, {**options, "fields": [swap(n) for n in options["fields"]]}) for title, options in fieldsets]


class WebhookKeyInline(admin.StackedInline):
    model = WebhookKey
    form = WebhookKeyForm
    extra = 0
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("scheme", "label", "active"),
                    "secret",
                    ("header_name", "encoding", "prefix"),
                    "public_key",
                    ("recipient_client_id", "provider_id"),
                    "created_at",
                )
            },
        ),
    )
    readonly_fields = ("created_at",)
    verbose_name = "webhook verification key"
    verbose_name_plural = "Webhook verification keys (several may be active at once, for rotation)"

    def _view_only(self, request, obj) -> bool:
        return not (self.has_change_permission(request, obj) or self.has_add_permission(request, obj))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return _swap_secrets(fieldsets, {"secret"}) if self._view_only(request, obj) else fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        return (*readonly, "secret_state") if self._view_only(request, obj) else readonly

    @admin.display(description="Secret")
    def secret_state(self, obj: WebhookKey) -> str:
        return _secret_state(obj.secret) if obj.scheme == WebhookKey.Scheme.HMAC else "-"


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    inlines = [WebhookKeyInline]
    list_display = (
        "name",
        "slug",
        "enabled",
        "fusion_base_url",
        "commerce_deployment",
        "commerce_base_url",
        "journal_mode",
        "updated_at",
    )
    list_filter = ("enabled", "commerce_deployment", "journal_mode")
    search_fields = ("name", "slug", "fusion_base_url", "commerce_base_url")
    readonly_fields = ("commerce_backfill_watermark", "fusion_sync_watermark", "created_at", "updated_at")
    actions = ["test_connections", "enable_connections", "disable_connections"]
    save_on_top = True
    fieldsets = (
        ("General", {"fields": ("slug", "name", "enabled")}),
        (
            "Fusion",
            {
                "fields": (
                    "fusion_base_url",
                    "fusion_rest_version",
                    "fusion_auth",
                    "fusion_token_url",
                    "fusion_client_id",
                    "fusion_client_secret",
                    "fusion_scope",
                    "fusion_username",
                    "fusion_password",
                ),
                "description": "Oracle Fusion Cloud ERP: the pod's base URL and how the connector signs in "
                "(OAuth 2.0 client credentials against the identity domain, or Basic).",
            },
        ),
        (
            "Posting defaults",
            {
                "fields": (
                    "business_unit",
                    "transaction_source",
                    "transaction_type",
                    "credit_memo_transaction_type",
                    "payment_terms",
                    "currency",
                    "invoice_event",
                    "transaction_number_prefix",
                    "time_zone",
                    "fusion_distributions",
                    "complete_invoices",
                    "discount_mode",
                    "tax_mode",
                    "tax_tolerance",
                    "freight_mode",
                    "conversion_rate_type",
                    "journal_mode",
                    "ledger_id",
                    "journal_source",
                    "journal_category",
                    "journal_batch_minutes",
                    "journal_batch_max_lines",
                ),
            },
        ),
        (
            "Retries and pacing",
            {
                "fields": (
                    "retry_base_seconds",
                    "retry_cap_seconds",
                    "retry_max_attempts",
                    "fusion_max_concurrency",
                    "fusion_max_rps",
                ),
            },
        ),
        (
            "Commerce",
            {
                "fields": (
                    "commerce_deployment",
                    "commerce_base_url",
                    "commerce_store_code",
                    "commerce_consumer_key",
                    "commerce_consumer_secret",
                    "commerce_access_token",
                    "commerce_access_token_secret",
                    "commerce_client_id",
                    "commerce_client_secret",
                    "commerce_ims_token_url",
                    "commerce_scopes",
                    "commerce_org_id",
                ),
                "description": "Adobe Commerce: PaaS signs with the integration's OAuth 1.0a keys; SaaS uses an "
                "IMS client id and secret. Webhook verification keys are listed below.",
            },
        ),
        (
            "Scheduled polls",
            {
                "fields": ("commerce_backfill_watermark", "fusion_sync_watermark", "created_at", "updated_at"),
                "classes": ("collapse",),
            },
        ),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return _swap_secrets(fieldsets, set(SECRET_FIELDS))
        return fieldsets

    # Writes go through the services, which audit which fields changed (never secret values).
    def save_model(self, request, obj, form, change):
        connection_save(connection=obj, actor=request.user, via="admin")

    def save_formset(self, request, form, formset, change):
        if formset.model is not WebhookKey:
            return super().save_formset(request, form, formset, change)
        keys = formset.save(commit=False)
        for key in formset.deleted_objects:
            webhook_key_delete(key=key, actor=request.user, via="admin")
        for key in keys:
            webhook_key_save(key=key, actor=request.user, via="admin")
        formset.save_m2m()

    def delete_model(self, request, obj):
        connection_delete(connection=obj, actor=request.user, via="admin")

    def delete_queryset(self, request, queryset):
        for connection in queryset:
            connection_delete(connection=connection, actor=request.user, via="admin")

    def get_urls(self):
        return [
            path("<int:pk>/test/", self.admin_site.admin_view(self.test_view), name="connector_connection_test"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        connection = self.get_object(request, object_id)
        extra: dict[str, Any] = {"can_test": self.has_change_permission(request, connection)}
        if connection is not None:
            path_ = reverse("commerce-webhook", args=[connection.slug])
            base = settings.CONNECTOR_PUBLIC_URL.rstrip("/")
            extra["webhook_url"] = f"{base}{path_}" if base else request.build_absolute_uri(path_)
            extra["has_active_key"] = connection.webhook_keys.filter(active=True).exists()
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def test_view(self, request, pk: int):
        """The Test connection button: sign in and read once on each side, say how it went in plain words."""
        connection = get_object_or_404(Connection, pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, connection):
            raise PermissionDenied
        self._test(request, connection)
        return redirect(reverse("admin:connector_connection_change", args=[connection.pk]))

    def _test(self, request, connection: Connection) -> None:
        result = connection_test(connection=connection, actor=request.user)
        for side in result.sides:
            level = messages.SUCCESS if side.ok else messages.ERROR
            self.message_user(request, f"{connection.name} — {side.system}: {side.message}", level)

    @admin.action(
        description="Test the selected connections (sign in and read once on each side)", permissions=["change"]
    )
    def test_connections(self, request, queryset):
        for connection in queryset:
            self._test(request, connection)

    @admin.action(description="Enable the selected connections", permissions=["change"])
    def enable_connections(self, request, queryset):
        changed = sum(connection_set_enabled(connection=c, enabled=True, actor=request.user) for c in queryset)
        self.message_user(request, f"{changed} connection(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable the selected connections", permissions=["change"])
    def disable_connections(self, request, queryset):
        changed = sum(connection_set_enabled(connection=c, enabled=False, actor=request.user) for c in queryset)
        self.message_user(request, f"{changed} connection(s) disabled.", messages.SUCCESS)


def _state_display(name: str):
    def display(self, obj: Connection) -> str:
        return format_html("<span>{}</span>", _secret_state(getattr(obj, name)))

    display.short_description = ConnectionForm.base_fields[name].label  # type: ignore[attr-defined]
    display.__name__ = f"{name}{STATE_SUFFIX}"
    return display


for _name in SECRET_FIELDS:
    setattr(ConnectionAdmin, f"{_name}{STATE_SUFFIX}", _state_display(_name))
