"""The audit trail in the admin: read-only for everyone, superusers included."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator

from core.admin import ReadOnlyAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "actor", "action", "outcome", "connection", "target", "short_message")
    list_filter = ("connection", "action", "outcome", "occurred_at")
    search_fields = ("action", "actor", "target_id", "correlation_id", "message")
    list_select_related = ("connection",)
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # the trail grows without bound; skip the second COUNT(*)
    list_per_page = 100
    fields = (
        "occurred_at",
        "actor",
        "user",
        "action",
        "outcome",
        "connection",
        "target_type",
        "target_id",
        "correlation_id",
        "message",
        "pretty_data",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="Target")
    def target(self, obj: AuditEvent) -> str:
        return f"{obj.target_type} {obj.target_id}".strip() or "-"

    @admin.display(description="Message")
    def short_message(self, obj: AuditEvent) -> str:
        return Truncator(obj.message).chars(120)

    @admin.display(description="Data")
    def pretty_data(self, obj: AuditEvent) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre>',
            json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        )
