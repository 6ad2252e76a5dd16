"""What arrived at the Commerce webhook: one row per verified delivery (stored by the request as it came, read
into a record by a worker; kept for review and audit, the raw body purged after the retention period) and a
capped counter of refused requests."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Delivery(models.Model):
    """One verified inbound HTTP request, as received. Unsigned or badly signed requests never get a row
    here: they only bump a DeliveryRejection counter, so a flood cannot fill the database.

    The request stores it `received` (its one write); a worker then reads it into a record and sets the
    status it ends in (delivery_record). A duplicate keeps its headers and the hash of its body, not the body."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received (not read yet)"
        ACCEPTED = "accepted", "Accepted (record created)"
        DUPLICATE = "duplicate", "Duplicate (nothing new)"
        IGNORED = "ignored", "Ignored (event type not handled)"
        UNREADABLE = "unreadable", "Unreadable (signed but not understood: parked for review)"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Indexed through delivery_request_idx, which starts with the connection.
    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.PROTECT, related_name="commerce_deliveries", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices)
    verifier = models.CharField(
        max_length=150, help_text="The scheme and key label that verified the signature, e.g. adobe_rsa:2026-11"
    )
    event_name = models.CharField(max_length=150, blank=True)
    request_id = models.CharField(
        max_length=128, blank=True, help_text="x-adobe-commerce-request-id (or the CloudEvent id)"
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="The allowed headers, redacted")
    body = models.BinaryField(blank=True, default=b"", help_text="The raw body, byte for byte, until purged")
    body_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the raw body (hex): what a duplicate keeps of its body"
    )
    body_purged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="Why it was ignored or could not be read")
    record = models.ForeignKey(
        "connector.Record", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["connection", "request_id"], name="delivery_request_idx"),
            models.Index(fields=["body_purged_at", "received_at"], name="delivery_purge_idx"),
            # The relay's look-up of deliveries no worker has read: only those rows are in it.
            models.Index(fields=["received_at"], name="delivery_unread_idx", condition=models.Q(status="received")),
        ]

    def __str__(self) -> str:
        return f"{self.event_name or 'delivery'} {self.received_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    def __repr__(self) -> str:
        return f"<Delivery {self.pk} {self.status} connection={self.connection_id} event={self.event_name!r}>"


class DeliveryRejection(models.Model):
    """A counter of refused requests per connection, reason and minute. Never the body: an unsigned request
    is not trusted with storage. Bounded by (connections + 1) x reasons x minutes, and purged with the bodies."""

    class Reason(models.TextChoices):
        UNKNOWN_CONNECTION = "unknown_connection", "Unknown or disabled connection"
        BAD_SIGNATURE = "bad_signature", "Missing or bad signature"
        NO_VERIFIER = "no_verifier", "The connection has no active verification key"
        TOO_LARGE = "too_large", "Body over the size limit"
        NOT_JSON = "not_json", "Body is not JSON"
        WRONG_RECIPIENT = "wrong_recipient", "I/O event for another recipient or provider"

    # "c<id>" for a known connection, "unknown" otherwise: one key for the unique constraint (NULLs never clash).
    scope = models.CharField(max_length=32, editable=False)
    connection = models.ForeignKey(
        "connector.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=32, choices=Reason.choices)
    minute = models.DateTimeField(help_text="The minute the requests arrived in (UTC)")
    count = models.PositiveIntegerField(default=0)
    last_seen_at = models.DateTimeField()
    last_source_ip = models.GenericIPAddressField(null=True, blank=True)
    last_detail = models.CharField(max_length=200, blank=True, help_text="e.g. the verifier's reason")

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "reason", "minute"], name="rejection_one_row_per_minute"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} x{self.count} at {self.minute:%Y-%m-%d %H:%M}"
