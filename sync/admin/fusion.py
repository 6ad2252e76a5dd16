"""The sync from Fusion in the admin: per connection its settings, per stream its schedule (pause, resume, run now;
the interval is the periodic task's), every run with its counts, and every link with its state and, for a failed
one, the reason (it is tried again on the next run)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from audit.services import audit_record
from connector.wakeups import task_send
from core.admin import ReadOnlyAdmin

from ..fusion_schedules import TASK
from ..models import FusionSyncSettings, SyncLink, SyncRun, SyncStream


class AttributeMapField(forms.CharField):
    """Commerce attribute = Fusion attribute pairs typed as "erp_item_number=ItemNumber; erp_item_status=...",
    stored as a JSON object."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 90}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "; ".join(f"{code}={field}" for code, field in value.items())
        return value

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        if isinstance(value, dict):
            return value
        pairs: dict[str, str] = {}
        for chunk in (super().to_python(value) or "").replace("\n", ";").split(";"):
            if not chunk.strip():
                continue
            code, sep, field = chunk.partition("=")
            if not sep or not code.strip() or not field.strip():
                raise ValidationError(f"{chunk.strip()!r} is not commerce_code=FusionAttribute.")
            pairs[code.strip()] = field.strip()
        return pairs


def _help(name: str) -> str:
    return str(getattr(FusionSyncSettings._meta.get_field(name), "help_text", ""))


class FusionSyncSettingsForm(forms.ModelForm):
    customer_attributes = AttributeMapField(help_text=_help("customer_attributes"))
    item_attributes = AttributeMapField(help_text=_help("item_attributes"))

    class Meta:
        model = FusionSyncSettings
        fields = (
            "connection",
            "customer_match",
            "customer_match_attribute",
            "customer_email_field",
            "customer_attributes",
            "customer_gl_attribute",
            "customer_create_missing",
            "customer_website_id",
            "item_organization",
            "item_timestamp_field",
            "item_match_attribute",
            "item_attributes",
            "item_gl_attribute",
            "item_create_missing",
            "item_attribute_set_id",
        )


@admin.register(FusionSyncSettings)
class FusionSyncSettingsAdmin(admin.ModelAdmin):
    form = FusionSyncSettingsForm
    list_display = ("connection", "customer_match", "item_organization", "item_timestamp_field", "updated_at")
    readonly_fields = ("updated_at",)
    fieldsets = (
        (None, {"fields": ("connection",)}),
        (
            "Customers (customerAccountSitesLOV to Commerce customers)",
            {
                "fields": (
                    "customer_match",
                    "customer_match_attribute",
                    "customer_email_field",
                    "customer_attributes",
                    "customer_gl_attribute",
                    "customer_create_missing",
                    "customer_website_id",
                )
            },
        ),
        (
            "Items (itemsV2 to Commerce products)",
            {
                "fields": (
                    "item_organization",
                    "item_timestamp_field",
                    "item_match_attribute",
                    "item_attributes",
                    "item_gl_attribute",
                    "item_create_missing",
                    "item_attribute_set_id",
                )
            },
        ),
    )

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            action="fusion_sync.settings_updated" if change else "fusion_sync.settings_created",
            actor=request.user,
            connection=obj.connection,
            target=obj,
            message=f"Sync from Fusion settings of {obj.connection.slug}: {', '.join(form.changed_data) or 'saved'}",
            data={
                "fields": list(form.changed_data),
                "values": {n: str(form.cleaned_data.get(n)) for n in form.changed_data},
            },
        )


@admin.register(SyncStream)
class SyncStreamAdmin(admin.ModelAdmin):
    list_display = ("connection", "stream", "schedule", "active", "watermark", "last_run")
    list_filter = ("stream", "connection")
    list_select_related = ("connection", "task", "task__interval")
    readonly_fields = ("connection", "stream", "watermark", "schedule", "active", "last_run")
    fields = readonly_fields
    actions = ["pause", "resume", "run_now"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Schedule (edit in Periodic tasks)")
    def schedule(self, obj: SyncStream) -> str:
        if obj.task is None:
            return "none (run manage.py ensure_schedules)"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[obj.task.pk])
        return format_html('<a href="{}">{}</a>', url, str(obj.task.interval or obj.task.crontab or "?"))

    @admin.display(description="Active", boolean=True)
    def active(self, obj: SyncStream) -> bool:
        return bool(obj.task and obj.task.enabled)

    @admin.display(description="Last run")
    def last_run(self, obj: SyncStream) -> str:
        run = SyncRun.objects.filter(connection=obj.connection_id, stream=obj.stream).first()
        if run is None:
            return "never"
        return f"{run.started_at:%Y-%m-%d %H:%M} {run.get_status_display()}: written {run.written}, failed {run.failed}"

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        for stream in queryset.select_related("task"):
            if stream.task is not None and stream.task.enabled != enabled:
                stream.task.enabled = enabled
                stream.task.save(update_fields=["enabled"])
                audit_record(
                    action="fusion_sync.resumed" if enabled else "fusion_sync.paused",
                    actor=request.user,
                    connection=stream.connection,
                    target=stream,
                    message=f"Sync from Fusion {stream} {'resumed' if enabled else 'paused'}",
                )
        self.message_user(request, f"{queryset.count()} stream(s) {'resumed' if enabled else 'paused'}.")

    @admin.action(description="Pause the selected streams", permissions=["change"])
    def pause(self, request, queryset) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description="Resume the selected streams", permissions=["change"])
    def resume(self, request, queryset) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Run the selected streams now", permissions=["change"])
    def run_now(self, request, queryset) -> None:
        sent = sum(task_send(TASK, stream.connection_id, stream.stream) for stream in queryset)
        level = messages.SUCCESS if sent == queryset.count() else messages.WARNING
        self.message_user(request, f"{sent} run(s) queued (see Sync runs).", level)


class SyncStateAdmin(ReadOnlyAdmin):
    """Written by the sync only; deletable (by a superuser: no group grants it) so that deleting a connection,
    which takes its sync state with it, is not refused by the admin."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


@admin.register(SyncRun)
class SyncRunAdmin(SyncStateAdmin):
    list_display = (
        "started_at",
        "connection",
        "stream",
        "status",
        "full",
        "read",
        "written",
        "unchanged",
        "failed",
        "unmatched",
        "missing",
        "inactive",
        "finished_at",
    )
    list_filter = ("stream", "status", "connection")
    list_select_related = ("connection",)
    date_hierarchy = "started_at"


@admin.register(SyncLink)
class SyncLinkAdmin(SyncStateAdmin):
    list_display = ("fusion_label", "kind", "commerce_id", "state", "attempts", "last_error_short", "updated_at")
    list_filter = ("state", "kind", "connection")
    search_fields = ("=fusion_key", "fusion_label", "=commerce_id")
    list_select_related = ("connection",)

    @admin.display(description="Reason")
    def last_error_short(self, obj: SyncLink) -> str:
        return obj.last_error[:120]
