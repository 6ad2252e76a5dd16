"""Fusion-side admin: journal batches (with resubmit / mark imported after a person checked Fusion) and the
read-only cache of Fusion reference data."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from connector.wakeups import REFRESH_REFERENCE, task_send
from core.admin import ReadOnlyAdmin

from .journals import batch_mark_imported, batch_resubmit
from .models import AccountCombination, CustomerAccount, JournalBatch, JournalEntry


class ReasonActionForm(ActionForm):
    reason = forms.CharField(
        required=False, label="Reason", widget=forms.TextInput(attrs={"size": 50, "placeholder": "what was checked"})
    )


class JournalEntryInline(admin.TabularInline):
    model = JournalEntry
    fields = ("record", "accounting_date", "currency", "lines")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JournalBatch)
class JournalBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "connection",
        "state",
        "line_count",
        "group_id",
        "request_id",
        "ess_status",
        "opened_at",
        "submitted_at",
        "finished_at",
    )
    list_filter = ("state", "connection", "opened_at")
    search_fields = ("name", "request_id", "=group_id", "file_name")
    readonly_fields = [f.name for f in JournalBatch._meta.fields]
    inlines = [JournalEntryInline]
    action_form = ReasonActionForm
    actions = ["resubmit", "mark_imported"]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("connector.replay_record")

    def _each(self, request, queryset, service, done: str) -> None:
        reason = request.POST.get("reason", "")
        for batch in queryset:
            try:
                service(batch=batch, actor=request.user, reason=reason)
            except ValueError as exc:
                self.message_user(request, f"{batch.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{batch.name}: {done}", messages.SUCCESS)

    @admin.action(description="Resubmit under a new GROUP_ID (only if Fusion imported nothing)", permissions=["replay"])
    def resubmit(self, request, queryset) -> None:
        self._each(request, queryset, batch_resubmit, "resubmitted; the journal shipper sends it on its next run")

    @admin.action(description="Mark imported (checked in Fusion: the import ran)", permissions=["replay"])
    def mark_imported(self, request, queryset) -> None:
        self._each(request, queryset, batch_mark_imported, "marked imported")


@admin.register(CustomerAccount)
class CustomerAccountAdmin(ReadOnlyAdmin):
    list_display = ("account_number", "site", "customer_name", "site_use_id", "active", "connection", "fetched_at")
    list_filter = ("active", "connection")
    search_fields = ("account_number", "site", "site_name", "customer_name", "party_number")
    actions = ["refresh_now"]

    @admin.action(description="Refresh Fusion reference data of these connections now")
    def refresh_now(self, request, queryset) -> None:
        ids = set(queryset.values_list("connection_id", flat=True))
        if all(task_send(REFRESH_REFERENCE, connection_id) for connection_id in ids):
            self.message_user(request, "Refresh queued; the lists update when it has run.")
        else:
            self.message_user(request, "The task queue is unavailable; try again shortly.", messages.ERROR)


@admin.register(AccountCombination)
class AccountCombinationAdmin(ReadOnlyAdmin):
    list_display = (
        "combination",
        "enabled",
        "start_date",
        "end_date",
        "detail_posting_allowed",
        "account_type",
        "connection",
        "fetched_at",
    )
    list_filter = ("enabled", "detail_posting_allowed", "account_type", "connection")
    search_fields = ("combination", "code_combination_id")
    actions = ["refresh_now"]
    refresh_now = CustomerAccountAdmin.refresh_now
