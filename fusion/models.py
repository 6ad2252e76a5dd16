"""Fusion-side state: journal batches shipped through FBDI, and the local cache of Fusion reference data
(customer accounts and sites, account combinations) the posting checks before anything is sent."""

from __future__ import annotations

from datetime import date

from django.db import models


class JournalBatch(models.Model):
    """One GL journal batch: the journal lines of many records, shipped as one GlInterface.zip."""

    class State(models.TextChoices):
        OPEN = "open", "Open (collecting lines)"
        CLOSED = "closed", "Closed, waiting to be submitted"
        SUBMITTING = "submitting", "Being submitted"
        RUNNING = "running", "Import running in Fusion"
        SUCCEEDED = "succeeded", "Imported"
        WARNING = "warning", "Imported with warnings"
        NEEDS_REVIEW = "needs_review", "Needs review"
        SUPERSEDED = "superseded", "Superseded by a resubmission"

    connection = models.ForeignKey("connector.Connection", on_delete=models.PROTECT, related_name="journal_batches")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    group_id = models.BigIntegerField(unique=True, help_text="GL_INTERFACE GROUP_ID, unique per import")
    name = models.CharField(max_length=100)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=120, blank=True)
    request_id = models.CharField(max_length=40, blank=True, help_text="ESS request id (ReqstId)")
    ess_status = models.CharField(max_length=20, blank=True)
    polls = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    line_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    resolution_hint = models.TextField(blank=True)
    resubmitted_as = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resubmission_of"
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one open batch per connection: every record's lines join the same one.
            models.UniqueConstraint(
                fields=["connection"],
                condition=models.Q(state="open"),
                name="journal_one_open_batch_per_connection",
            ),
        ]
        verbose_name_plural = "journal batches"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_state_display()})"


class JournalEntry(models.Model):
    """A record's balanced journal lines inside a batch. A record joins one batch only, ever."""

    batch = models.ForeignKey(JournalBatch, on_delete=models.PROTECT, related_name="entries")
    record = models.OneToOneField("connector.Record", on_delete=models.PROTECT, related_name="journal_entry")
    accounting_date = models.DateField()
    currency = models.CharField(max_length=3)
    lines = models.JSONField(help_text="[{combination, entered_dr, entered_cr, description}]")
    conversion = models.JSONField(
        default=dict, blank=True, help_text="Not in the ledger currency: {rate_type, date, rate} as on the invoice"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"{self.record} in {self.batch.name}"


class ReferenceStatus(models.Model):
    """When the cached reference data of a connection was last refreshed."""

    connection = models.OneToOneField(
        "connector.Connection", on_delete=models.CASCADE, related_name="fusion_reference_status"
    )
    customers_refreshed_at = models.DateTimeField(null=True, blank=True)
    combinations_refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "reference status"

    def __str__(self) -> str:
        return f"Reference data of {self.connection}"


class CustomerAccount(models.Model):
    """A Fusion customer account with one bill-to site (customerAccountSitesLOV row)."""

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="fusion_customer_accounts"
    )
    account_number = models.CharField(max_length=30)
    site = models.CharField(max_length=150, help_text="SiteUseId or site name as sent in BillToSite")
    site_use_id = models.CharField(max_length=40, blank=True)
    site_name = models.CharField(max_length=150, blank=True)
    customer_name = models.CharField(max_length=360, blank=True)
    customer_account_id = models.CharField(max_length=40, blank=True)
    party_number = models.CharField(max_length=30, blank=True)
    active = models.BooleanField(default=True)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "account_number", "site"], name="fusion_customer_site_unique")
        ]
        indexes = [models.Index(fields=["connection", "account_number"], name="fusion_customer_acct_idx")]

    def __str__(self) -> str:
        return f"{self.account_number} / {self.site} {self.customer_name}"


class AccountCombination(models.Model):
    """A GL account combination (accountCombinationsLOV row) as last seen in Fusion."""

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="fusion_account_combinations"
    )
    combination = models.CharField(max_length=250, help_text="Concatenated segments, e.g. 01-000-4110-0000-000")
    code_combination_id = models.CharField(max_length=40, blank=True)
    enabled = models.BooleanField(default=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    detail_posting_allowed = models.BooleanField(default=True)
    account_type = models.CharField(max_length=4, blank=True)
    fetched_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "combination"], name="fusion_combination_unique")]

    def __str__(self) -> str:
        return self.combination

    def unusable_reason(self, on: date) -> str:
        """Why nothing may be posted to this combination on the given date ('' when it may)."""
        if not self.enabled:
            return f"account combination {self.combination} is disabled in Fusion"
        if self.start_date and on < self.start_date:
            return f"account combination {self.combination} is not active until {self.start_date}"
        if self.end_date and on > self.end_date:
            return f"account combination {self.combination} was end-dated on {self.end_date}"
        if not self.detail_posting_allowed:
            return f"account combination {self.combination} does not allow detail posting"
        return ""
