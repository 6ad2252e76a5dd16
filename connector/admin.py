"""The connection admin: one fieldset per side, write-only secrets, audited changes (through services)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, When
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from audit.models import AuditEvent
from mappings.services import record_plan_preview

from .diagnostics import connection_test
from .forms import ConnectionForm, WebhookKeyForm
from .models import SECRET_FIELDS, Connection, Record, WebhookKey
from .services import (
    connection_delete,
    connection_save,
    connection_set_enabled,
    record_ignore,
    record_replay,
    webhook_key_delete,
    webhook_key_save,
)

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


class ReadOnlyAdmin(admin.ModelAdmin):
    """What the connector and the systems wrote, shown and never edited here (records, deliveries, the audit
    trail, Fusion's cached reference data): actions do the changes that are allowed."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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

    @admin.action(
        description="Test the selected connections (sign in and read once on each side)", permissions=["change"]
    )
    def test_connections(self, request, queryset):
        for connection in queryset:
            result = connection_test(connection=connection, actor=request.user)
            for side in result.sides:
                level = messages.SUCCESS if side.ok else messages.ERROR
                self.message_user(request, f"{connection.name} — {side.system}: {side.message}", level)

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


# --- Records: the Finance view ----------------------------------------------------------------------------------


class ReasonActionForm(ActionForm):
    reason = forms.CharField(
        required=False, label="Reason", widget=forms.TextInput(attrs={"size": 50, "placeholder": "why (audited)"})
    )


class RecordStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Record.State.choices

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "connection",
        "state",
        "attempts",
        "problem",
        "fusion_transaction_number",
        "grand_total",
        "currency",
        "created_at",
    )
    list_filter = (RecordStateFilter, "kind", "connection", "source", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=commerce_number", "=commerce_entity_id", "=commerce_order_id", "=fusion_transaction_number")
    list_select_related = ("connection",)
    action_form = ReasonActionForm
    actions = ["preview_posting", "replay", "mark_ignored"]
    fieldsets = (
        (
            "Document",
            {
                "fields": (
                    "connection",
                    "kind",
                    "commerce_number",
                    "commerce_entity_id",
                    "commerce_order_id",
                    "source",
                    "document_date",
                    "grand_total",
                    "currency",
                )
            },
        ),
        (
            "Where it stands",
            {
                "fields": (
                    "state",
                    "last_error",
                    "resolution_hint",
                    "attempts",
                    "next_attempt_at",
                    "outcome_unknown",
                    "fusion_transaction_number",
                    "fusion_transaction_id",
                    "linked_record",
                    "posted_at",
                    "record_actions",
                )
            },
        ),
        ("Posting plan", {"fields": ("plan_preview",)}),
        ("Original payload", {"fields": ("document_pretty",), "classes": ("collapse",)}),
        ("Audit timeline", {"fields": ("timeline",)}),
    )

    def get_queryset(self, request):
        # Records needing review first, then the newest.
        return (
            super()
            .get_queryset(request)
            .annotate(
                review_first=Case(When(state=Record.State.NEEDS_REVIEW, then=0), default=1, output_field=IntegerField())
            )
            .order_by("review_first", "-created_at")
        )

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("connector.replay_record")

    @admin.display(description="Reason and resolution")
    def problem(self, obj: Record) -> str:
        if obj.state != Record.State.NEEDS_REVIEW:
            return ""
        return format_html("{}<br><small>{}</small>", obj.last_error[:200], obj.resolution_hint[:200])

    @admin.display(description="Plan (with the current mappings; nothing is sent)")
    def plan_preview(self, obj: Record) -> str:
        try:
            return mark_safe(record_plan_preview(obj))  # noqa: S308 - rendered by a template with autoescape
        except Exception as exc:  # noqa: BLE001 - show why the preview cannot be made instead of a 500
            return format_html("<p class='errornote'>No preview: {}</p>", exc)

    @admin.display(description="Normalised document")
    def document_pretty(self, obj: Record) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.document, indent=2, sort_keys=True))

    @admin.display(description="Actions")
    def record_actions(self, obj: Record) -> str:
        return format_html(
            '<a class="button" href="{}">Replay or ignore…</a>', reverse("admin:connector_record_decide", args=[obj.pk])
        )

    @admin.display(description="Every step, oldest first")
    def timeline(self, obj: Record) -> str:
        events = AuditEvent.objects.filter(target_type="connector.record", target_id=str(obj.pk)).order_by(
            "occurred_at", "id"
        )
        return render_to_string("admin/connector/record/timeline.html", {"events": events})

    def get_urls(self):
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name="connector_record_decide"),
            *super().get_urls(),
        ]

    def decide_view(self, request, pk: int):
        record = get_object_or_404(Record, pk=pk)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        allowed = self.has_replay_permission(request)
        if request.method == "POST":
            if not allowed:
                raise PermissionDenied
            reason = request.POST.get("reason", "")
            try:
                if "ignore" in request.POST:
                    record_ignore(record=record, actor=request.user, reason=reason)
                    self.message_user(request, f"{record} marked ignored.", messages.SUCCESS)
                else:
                    record_replay(record=record, actor=request.user, reason=reason)
                    self.message_user(
                        request, f"{record} queued for replay with the current mappings.", messages.SUCCESS
                    )
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            return redirect(reverse("admin:connector_record_change", args=[record.pk]))
        context = {
            **self.admin_site.each_context(request),
            "record": record,
            "allowed": allowed,
            "opts": self.model._meta,
            "title": f"Replay or ignore {record}",
        }
        return TemplateResponse(request, "admin/connector/record/decide.html", context)

    @admin.action(description="Preview posting (nothing is sent)")
    def preview_posting(self, request, queryset):
        previews = []
        for record in queryset[:50]:
            previews.append((record, self.plan_preview(record)))
        context = {
            **self.admin_site.each_context(request),
            "previews": previews,
            "opts": self.model._meta,
            "title": "Preview posting",
        }
        return TemplateResponse(request, "admin/connector/record/preview.html", context)

    def _each(self, request, queryset, service, done: str) -> None:
        reason = request.POST.get("reason", "")
        ok = 0
        for record in queryset:
            try:
                service(record=record, actor=request.user, reason=reason)
                ok += 1
            except ValueError as exc:
                self.message_user(request, f"{record}: {exc}", messages.ERROR)
        if ok:
            self.message_user(request, f"{ok} record(s) {done}.", messages.SUCCESS)

    @admin.action(description="Replay (from the failed step, with the current mappings)", permissions=["replay"])
    def replay(self, request, queryset):
        self._each(request, queryset, record_replay, "queued for replay")

    @admin.action(description="Mark ignored (give the reason)", permissions=["replay"])
    def mark_ignored(self, request, queryset):
        self._each(request, queryset, record_ignore, "marked ignored")
