"""Deliveries in the admin: read-only, with the body pretty-printed for review."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin

from .models import Delivery, DeliveryRejection


def _pre(text: str):
    return format_html('<pre style="white-space: pre-wrap; max-height: 60em; overflow: auto">{}</pre>', text)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "connection", "event_name", "status", "verifier", "record_link", "request_id")
    list_filter = ("status", "connection", "event_name", ("received_at", admin.DateFieldListFilter))
    search_fields = ("request_id", "event_name", "record__commerce_number", "record__commerce_entity_id")
    date_hierarchy = "received_at"
    list_select_related = ("connection", "record")
    show_full_result_count = False
    fields = (
        "received_at",
        "connection",
        "status",
        "note",
        "event_name",
        "verifier",
        "request_id",
        "source_ip",
        "record_link",
        "pretty_headers",
        "pretty_body",
        "body_sha256",
        "body_purged_at",
    )
    readonly_fields = fields

    @admin.display(description="record")
    def record_link(self, obj: Delivery):
        if obj.record_id is None:
            return "-"
        try:
            url = reverse("admin:connector_record_change", args=[obj.record_id])
        except NoReverseMatch:  # records not in the admin
            return str(obj.record or obj.record_id)
        return format_html('<a href="{}">{}</a>', url, obj.record or obj.record_id)

    @admin.display(description="headers (redacted)")
    def pretty_headers(self, obj: Delivery):
        return _pre(json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description="body")
    def pretty_body(self, obj: Delivery):
        if obj.body_purged_at:
            return f"Purged on {obj.body_purged_at:%Y-%m-%d} (retention period over)."
        raw = bytes(obj.body or b"")
        if not raw and obj.status == Delivery.Status.DUPLICATE:
            return "Not kept: a duplicate keeps its headers and the SHA-256 of its body (below); see the record."
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except (ValueError, UnicodeDecodeError):
            text = raw.decode("utf-8", errors="replace")
        return _pre(text)


@admin.register(DeliveryRejection)
class DeliveryRejectionAdmin(ReadOnlyAdmin):
    list_display = ("minute", "connection", "reason", "count", "last_source_ip", "last_detail")
    list_filter = ("reason", "connection")
    date_hierarchy = "minute"
