"""The state of the sync from Fusion (README "Sync from Fusion"): per connection its settings, per stream its
watermark and schedule, a row per run, and a link per Fusion record and Commerce entity with what the sync last
wrote there, so only changes are written and nothing the sync wrote is taken for a change."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from connector.models import Connection

# Reconciliation's models live in their own module; importing them here registers them with the sync app.
from .reconciliation_models import ReconciliationDifference, ReconciliationRun  # noqa: F401

_ATTRIBUTE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_FUSION_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")


def default_customer_attributes() -> dict[str, str]:
    return {"erp_account_number": "AccountNumber", "erp_bill_to_site": "SiteName"}


def default_item_attributes() -> dict[str, str]:
    return {"erp_item_number": "ItemNumber", "erp_item_status": "ItemStatusValue"}


class FusionSyncSettings(models.Model):
    """What the sync from Fusion reads and which Commerce attributes it writes, for one connection. Commerce
    customer attributes cannot be created over REST: create every attribute named here in Commerce first."""

    class CustomerMatch(models.TextChoices):
        ATTRIBUTE = "attribute", "A Commerce customer attribute holds the Fusion account number"
        EMAIL = "email", "Email (a Fusion attribute holds it)"

    class ItemTimestamp(models.TextChoices):
        LAST_UPDATE_DATE_TIME = "LastUpdateDateTime", "LastUpdateDateTime"
        LAST_UPDATE_DATE = "LastUpdateDate", "LastUpdateDate"

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="fusion_sync_settings")

    customer_match = models.CharField(max_length=16, choices=CustomerMatch.choices, default=CustomerMatch.ATTRIBUTE)
    customer_match_attribute = models.CharField(
        max_length=60,
        default="erp_account_number",
        blank=True,
        help_text="The Commerce customer attribute holding the Fusion account number (attribute matching).",
    )
    customer_email_field = models.CharField(
        max_length=80,
        blank=True,
        help_text="The customerAccountSitesLOV attribute holding the customer's email (email matching). Oracle "
        "documents none on that resource: name the one your pod exposes.",
    )
    customer_attributes = models.JSONField(
        default=default_customer_attributes,
        blank=True,
        help_text="Commerce customer attribute = Fusion attribute of the account's primary bill-to site, e.g. "
        "erp_account_number=AccountNumber; erp_bill_to_site=SiteName",
    )
    customer_gl_attribute = models.CharField(
        max_length=60,
        blank=True,
        default="erp_gl_assignment",
        help_text="The Commerce customer attribute that gets the segment values of the customer rule in effect "
        "(blank: not written).",
    )
    customer_create_missing = models.BooleanField(
        default=False,
        help_text="Create a Commerce customer for a Fusion account with no match (email matching only; Commerce "
        "may send it a welcome email).",
    )
    customer_website_id = models.PositiveIntegerField(default=1, help_text="Website of created customers.")

    item_organization = models.CharField(
        max_length=18, blank=True, help_text="The item master organisation code, e.g. M1 (the items stream needs it)."
    )
    item_timestamp_field = models.CharField(
        max_length=24,
        choices=ItemTimestamp.choices,
        default=ItemTimestamp.LAST_UPDATE_DATE_TIME,
        help_text="itemsV2's change timestamp (check GET itemsV2/describe on your pod).",
    )
    item_match_attribute = models.CharField(
        max_length=60,
        blank=True,
        help_text="Blank: the Commerce SKU equals the Fusion ItemNumber. Else the product attribute holding it.",
    )
    item_attributes = models.JSONField(
        default=default_item_attributes,
        blank=True,
        help_text="Commerce product attribute = itemsV2 attribute, e.g. erp_item_number=ItemNumber",
    )
    item_gl_attribute = models.CharField(
        max_length=60,
        blank=True,
        default="erp_gl_revenue",
        help_text="The product attribute that gets the segment values of the product rule in effect (blank: not "
        "written).",
    )
    item_create_missing = models.BooleanField(
        default=False, help_text="Create a disabled, not visible simple product for a Fusion item with no match."
    )
    item_attribute_set_id = models.PositiveIntegerField(default=4, help_text="Attribute set of created products.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sync settings"
        verbose_name_plural = "sync settings"

    def __str__(self) -> str:
        return f"Sync settings of {self.connection}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for name in ("customer_match_attribute", "customer_gl_attribute", "item_match_attribute", "item_gl_attribute"):
            value = getattr(self, name)
            if value and not _ATTRIBUTE_CODE.match(value):
                errors.setdefault(name, []).append("An attribute code is lowercase letters, digits and _.")
        for name in ("customer_attributes", "item_attributes"):
            for problem in attribute_map_problems(getattr(self, name)):
                errors.setdefault(name, []).append(problem)
        if self.customer_email_field and not _FUSION_FIELD.match(self.customer_email_field):
            errors.setdefault("customer_email_field", []).append("A Fusion attribute name is letters, digits and _.")
        if self.customer_match == self.CustomerMatch.EMAIL and not self.customer_email_field:
            errors.setdefault("customer_email_field", []).append("Email matching needs the Fusion email attribute.")
        if self.customer_match == self.CustomerMatch.ATTRIBUTE and not self.customer_match_attribute:
            errors.setdefault("customer_match_attribute", []).append("Name the attribute holding the account number.")
        if self.customer_create_missing and self.customer_match != self.CustomerMatch.EMAIL:
            errors.setdefault("customer_create_missing", []).append("Creating customers needs email matching.")
        if errors:
            raise ValidationError(errors)


def attribute_map_problems(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["Write the attributes as commerce_code=FusionAttribute pairs."]
    problems = []
    for code, field in value.items():
        if not isinstance(code, str) or not _ATTRIBUTE_CODE.match(code):
            problems.append(f"{code!r} is not a Commerce attribute code (lowercase letters, digits and _).")
        if not isinstance(field, str) or not _FUSION_FIELD.match(field):
            problems.append(f"{field!r} is not a Fusion attribute name (letters, digits and _).")
    return problems


class Stream(models.TextChoices):
    CUSTOMERS = "customers", "Customers"
    ITEMS = "items", "Items"
    GL = "gl", "GL assignments"


class SyncStream(models.Model):
    """One stream of one connection: its watermark and its schedule (a django-celery-beat task, whose interval
    and enabled flag are edited in the admin)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="fusion_streams")
    stream = models.CharField(max_length=16, choices=Stream.choices)
    watermark = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Items: every item stamped before this is done. Customers: when the last complete read began. "
        "GL: when the last sweep finished.",
    )
    task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="fusion_stream"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "stream"], name="sync_stream_unique")]
        ordering = ["connection", "stream"]

    def __str__(self) -> str:
        return f"{self.connection.slug} {self.get_stream_display()}"


class SyncRun(models.Model):
    """One run of one stream, with its counts."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        PARTIAL = "partial", "Stopped at its time limit (the next run carries on)"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="fusion_runs")
    stream = models.CharField(max_length=16, choices=Stream.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    full = models.BooleanField(default=False)
    actor = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    read = models.PositiveIntegerField(default=0, help_text="Fusion records read")
    written = models.PositiveIntegerField(default=0, help_text="Commerce entities written (created included)")
    created = models.PositiveIntegerField(default=0, help_text="Commerce entities created")
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0, help_text="Fusion records with no Commerce match")
    missing = models.PositiveIntegerField(default=0, help_text="Linked records no longer in Fusion (reported)")
    inactive = models.PositiveIntegerField(default=0, help_text="Inactive Fusion records (reported)")
    fusion_requests = models.PositiveIntegerField(default=0)
    commerce_requests = models.PositiveIntegerField(default=0)
    watermark = models.DateTimeField(null=True, blank=True, help_text="The stream's watermark after the run")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connection", "stream", "started_at"], name="sync_run_stream_idx")]

    def __str__(self) -> str:
        return f"{self.connection.slug} {self.stream} run {self.started_at:%Y-%m-%d %H:%M:%S}"


class SyncLink(models.Model):
    """A Fusion record (customer account, item) and the Commerce entity it is linked to (customer id, SKU), or
    none yet (unmatched). `written` is what the sync last wrote there: a value equal to it is never written
    again, nor taken for a change when read back."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        PRODUCT = "product", "Product"

    class State(models.TextChoices):
        LINKED = "linked", "Linked"
        UNMATCHED = "unmatched", "No Commerce match"
        FAILED = "failed", "Failed (retried next run)"
        MISSING = "missing", "No longer in Fusion (reported, nothing deleted)"
        INACTIVE = "inactive", "Inactive in Fusion (reported)"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="fusion_links")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    fusion_key = models.CharField(max_length=64, help_text="Fusion AccountNumber or ItemId")
    fusion_label = models.CharField(max_length=300, blank=True, help_text="Customer name or item number")
    commerce_id = models.CharField(max_length=128, blank=True, help_text="Commerce customer id or SKU")
    state = models.CharField(max_length=16, choices=State.choices)
    fusion_data = models.JSONField(default=dict, blank=True, help_text="The Fusion record as last read")
    fusion_hash = models.CharField(max_length=64, blank=True)
    fusion_updated_at = models.DateTimeField(null=True, blank=True)
    written = models.JSONField(default=dict, blank=True, help_text="Attribute values the sync last wrote")
    facts = models.JSONField(default=dict, blank=True, help_text="What the GL rules match on (Commerce side)")
    rules_version = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row")
    seen_at = models.DateTimeField(null=True, blank=True, help_text="Last complete read that returned it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "kind", "fusion_key", "commerce_id"], name="sync_link_unique_pair"
            )
        ]
        indexes = [
            models.Index(fields=["connection", "kind", "state"], name="sync_link_state_idx"),
            models.Index(fields=["connection", "kind", "commerce_id"], name="sync_link_commerce_idx"),
        ]
        ordering = ["connection", "kind", "fusion_key"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.fusion_label or self.fusion_key} -> {self.commerce_id or '(none)'}"
