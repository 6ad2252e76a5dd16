"""Records: the Finance view, with the plan preview, replay, ignore and the audit timeline."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, When
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from audit.models import AuditEvent
from connector.models import Record
from core.admin import ReadOnlyAdmin, ReasonActionForm
from mappings.plans import plan_preview_html
from mappings.services import plan_for_record

from ..replay import record_ignore, record_replay


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
            return mark_safe(plan_preview_html(plan_for_record(obj)))  # noqa: S308 - rendered by a template with autoescape
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
