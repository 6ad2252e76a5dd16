"""Reconciliation runs: the list, a run's table by day and currency and its differences (each linked to its
record), CSV downloads, and a form that starts a run in the background."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from connector.documents import format_money
from connector.models import Connection
from core.admin import ReadOnlyAdmin

from ..flows.reconciliation import ReconciliationInputError, reconciliation_start
from ..flows.reconciliation_csv import daily_csv, differences_csv
from ..models import ReconciliationRun
from ..tasks import reconcile

SHOWN_DIFFERENCES = 500  # on the page; the CSV has them all


class ReconcileForm(forms.Form):
    connection = forms.ModelChoiceField(queryset=Connection.objects.order_by("name"))
    date_from = forms.DateField(label="From (YYYY-MM-DD)")
    date_to = forms.DateField(label="To (YYYY-MM-DD, included)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        yesterday = timezone.localdate() - timedelta(days=1)
        self.fields["date_from"].initial = yesterday
        self.fields["date_to"].initial = yesterday


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "connection", "date_from", "date_to", "status", "difference_count", "finished_at")
    list_filter = ("status", "connection")
    list_select_related = ("connection",)
    ordering = ("-started_at", "-pk")
    fields = (
        "connection",
        "date_from",
        "date_to",
        "status",
        "error",
        "requested_by",
        "started_at",
        "finished_at",
        "counts",
        "downloads",
        "daily_table",
        "differences_table",
    )
    readonly_fields = fields

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reconcile/", view(self.reconcile_view), name="sync_reconciliationrun_reconcile"),
            path("<int:pk>/differences.csv", view(self.differences_csv_view), name="sync_reconciliationrun_csv"),
            path("<int:pk>/daily.csv", view(self.daily_csv_view), name="sync_reconciliationrun_daily_csv"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if self.has_reconcile_permission(request):
            messages.info(
                request,
                format_html(
                    'To start a run, <a href="{}">reconcile a connection and range</a>.',
                    reverse("admin:sync_reconciliationrun_reconcile"),
                ),
            )
        return super().changelist_view(request, extra_context)

    def has_reconcile_permission(self, request) -> bool:
        # A run only reads both systems and stores what it found: whoever may see the runs may start one.
        return request.user.has_perm("sync.view_reconciliationrun")

    def reconcile_view(self, request):
        if not self.has_reconcile_permission(request):
            raise PermissionDenied
        form = ReconcileForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    run = reconciliation_start(
                        connection=form.cleaned_data["connection"],
                        date_from=form.cleaned_data["date_from"],
                        date_to=form.cleaned_data["date_to"],
                        actor=request.user.get_username(),
                    )
                    transaction.on_commit(lambda: reconcile.apply_async(args=[run.pk], retry=False))
            except ReconciliationInputError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{run} started; this page shows the result when it is done.")
                return redirect(reverse("admin:sync_reconciliationrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "title": "Reconcile", "form": form, "opts": self.opts}
        return TemplateResponse(request, "admin/sync/reconciliationrun/reconcile.html", context)

    def _csv(self, request, pk: int, body: Callable[[ReconciliationRun], str], name: str) -> HttpResponse:
        run = get_object_or_404(ReconciliationRun, pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        response = HttpResponse(body(run), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="reconciliation-{run.connection.slug}-{run.date_from}-{run.date_to}-{name}.csv"'
        )
        return response

    def differences_csv_view(self, request, pk: int):
        return self._csv(request, pk, differences_csv, "differences")

    def daily_csv_view(self, request, pk: int):
        return self._csv(request, pk, daily_csv, "daily")

    @admin.display(description="Counts")
    def counts(self, obj: ReconciliationRun) -> str:
        return (
            f"Commerce {obj.commerce_count}, Fusion {obj.fusion_count}, matched {obj.matched_count}, "
            f"differences {obj.difference_count}"
        )

    @admin.display(description="Download")
    def downloads(self, obj: ReconciliationRun) -> str:
        if obj.finished_at is None:
            return "when the run is done"
        return format_html(
            '<a href="{}">Differences (CSV)</a> · <a href="{}">By day and currency (CSV)</a>',
            reverse("admin:sync_reconciliationrun_csv", args=[obj.pk]),
            reverse("admin:sync_reconciliationrun_daily_csv", args=[obj.pk]),
        )

    @admin.display(description="By day and currency")
    def daily_table(self, obj: ReconciliationRun) -> str:
        if not obj.daily:
            return "nothing in the range"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row["day"],
                    row["currency"],
                    row["commerce_count"],
                    format_money(Decimal(row["commerce_amount"]), row["currency"]),
                    row["fusion_count"],
                    format_money(Decimal(row["fusion_amount"]), row["currency"]),
                    ""
                    if row["commerce_amount"] == row["fusion_amount"] and row["commerce_count"] == row["fusion_count"]
                    else "differs",
                )
                for row in obj.daily
            ),
        )
        return format_html(
            "<table><thead><tr><th>Day</th><th>Currency</th><th>Commerce documents</th><th>Commerce amount</th>"
            "<th>Fusion documents</th><th>Fusion amount</th><th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Differences")
    def differences_table(self, obj: ReconciliationRun) -> str:
        shown = list(obj.differences.all()[:SHOWN_DIFFERENCES])
        if not shown:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    d.day or "",
                    d.get_kind_display(),
                    f"{d.commerce_kind} {d.commerce_number}".strip(),
                    d.fusion_numbers,
                    format_money(d.commerce_amount, d.currency),
                    format_money(d.fusion_amount, d.currency),
                    format_money(d.difference, d.currency),
                    _record_link(d.record_id),
                )
                for d in shown
            ),
        )
        more = obj.difference_count - len(shown)
        return format_html(
            "<table><thead><tr><th>Day</th><th>Kind</th><th>Commerce</th><th>Fusion</th><th>Commerce amount</th>"
            "<th>Fusion amount</th><th>Difference</th><th>Record</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            format_html("<p>{} more in the CSV.</p>", more) if more > 0 else "",
        )


def _record_link(record_id: int | None) -> str:
    if record_id is None:
        return ""
    return format_html(
        '<a href="{}">record {}</a>', reverse("admin:connector_record_change", args=[record_id]), record_id
    )
