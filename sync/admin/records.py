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
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from audit.models import AuditEvent
from connector.documents import format_money
from connector.models import Record
from core.admin import ReadOnlyAdmin, ReasonActionForm
from mappings.plans import plan_from_json, plan_preview_html
from mappings.services import plan_for_record

from ..replay import REPLAYABLE_STATES, record_ignore, record_replay


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
        "amount",
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
                    "amount",
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
                    "next_attempt",
                    "outcome",
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
        rank = Case(
            When(state=Record.State.NEEDS_REVIEW, then=0),
            When(state=Record.State.RETRYING, then=1),
            default=2,
            output_field=IntegerField(),
        )
        # Annotated before the admin orders by it (ModelAdmin.get_queryset would order first).
        return self.model._default_manager.annotate(state_rank=rank).order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        # Needing review first, then waiting to retry, then the newest. (Not `ordering`: the admin's checks
        # accept only model fields there, and state_rank is annotated in get_queryset.)
        return ("state_rank", "-created_at")

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("connector.replay_record")

    @admin.display(description="Reason and resolution")
    def problem(self, obj: Record) -> str:
        if obj.state not in (Record.State.NEEDS_REVIEW, Record.State.RETRYING):
            return ""
        # The list shows the start of each; the whole text is a hover away.
        return format_html(
            '<span title="{}">{}</span><br><small title="{}">{}</small>',
            obj.last_error,
            _shorten(obj.last_error),
            obj.resolution_hint,
            _shorten(obj.resolution_hint),
        )

    @admin.display(description="Amount", ordering="grand_total")
    def amount(self, obj: Record) -> str:
        return format_money(obj.grand_total, obj.currency)

    @admin.display(description="Next attempt")
    def next_attempt(self, obj: Record) -> str:
        if obj.state not in Record.ACTIVE_STATES:
            return "none: nothing more to do" if obj.fusion_transaction_id else "none until replayed"
        return date_format(timezone.localtime(obj.next_attempt_at), "DATETIME_FORMAT")

    @admin.display(description="Last create")
    def outcome(self, obj: Record) -> str:
        if not obj.outcome_unknown or obj.fusion_transaction_id:
            return ""
        return (
            "Fusion did not answer the last create: the document may or may not exist there. The next attempt "
            "looks it up first, so it is never created twice."
        )

    @admin.display(description="Plan")
    def plan_preview(self, obj: Record) -> str:
        if obj.fusion_transaction_id and obj.plan:
            # Posted: the plan as it was sent, not what today's mappings would make of the document.
            heading = format_html("<p>Sent to Fusion as <strong>{}</strong>.</p>", obj.fusion_transaction_number)
            return heading + mark_safe(plan_preview_html(plan_from_json(obj.plan)))  # noqa: S308 - autoescaped template
        try:
            preview = plan_preview_html(plan_for_record(obj))
        except Exception as exc:  # noqa: BLE001 - show why the preview cannot be made instead of a 500
            return format_html("<p class='errornote'>No preview: {}</p>", exc)
        heading = mark_safe("<p>With the mappings as they are now; nothing is sent.</p>")
        return heading + mark_safe(preview)  # noqa: S308 - rendered by a template with autoescape

    @admin.display(description="Normalised document")
    def document_pretty(self, obj: Record) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.document, indent=2, sort_keys=True))

    @admin.display(description="Actions")
    def record_actions(self, obj: Record) -> str:
        if obj.state not in REPLAYABLE_STATES:
            return ""
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
