"""Reconciliation results: one row per run (a connection and a range of days in its time zone) with its counts
and its table of totals by day and currency, and one row per difference found, for Finance to work through."""

from __future__ import annotations

from django.db import models

from connector.models import Connection, Record


class ReconciliationRun(models.Model):
    """Commerce documents against Fusion AR documents for `date_from`..`date_to` (both included, local days)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "Reconciled"
        DIFFERENCES = "differences", "Differences found"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="reconciliation_runs")
    date_from = models.DateField()
    date_to = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    commerce_count = models.PositiveIntegerField(default=0)
    fusion_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    difference_count = models.PositiveIntegerField(default=0)
    # [{"day": "2026-11-30", "currency": "USD", "commerce_count": 3, "commerce_amount": "12.34",
    #   "fusion_count": 3, "fusion_amount": "12.34"}, ...] sorted by day then currency; amounts as strings.
    daily = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["connection", "-finished_at"], name="recon_run_latest_idx")]

    def __str__(self) -> str:
        return f"Reconciliation {self.date_from}..{self.date_to} ({self.get_status_display()})"


class ReconciliationDifference(models.Model):
    class Kind(models.TextChoices):
        MISSING_IN_FUSION = "missing_in_fusion", "Missing in Fusion"
        MISSING_IN_COMMERCE = "missing_in_commerce", "Missing in Commerce"
        AMOUNT_DIFFERS = "amount_differs", "Amount differs"
        DUPLICATE_IN_FUSION = "duplicate_in_fusion", "Duplicate in Fusion"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="differences")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    day = models.DateField(null=True, blank=True)
    commerce_kind = models.CharField(max_length=16, blank=True)
    commerce_number = models.CharField(max_length=64, blank=True)
    fusion_numbers = models.CharField(max_length=400, blank=True, help_text="Fusion transaction number(s)")
    currency = models.CharField(max_length=3, blank=True)
    commerce_amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    fusion_amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    difference = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    record = models.ForeignKey(Record, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.commerce_number or self.fusion_numbers}"
