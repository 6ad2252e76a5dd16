"""The audit trail: insert-only. Rows can be added, never changed or removed."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.html import escape  # the admin renders help texts as HTML


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are insert-only: they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are insert-only: they cannot be deleted.")

    # bulk_update goes through update(); guard it explicitly for a clear message.
    def bulk_update(self, objs, fields, batch_size=None):
        raise PermissionError("Audit events are insert-only: they cannot be updated.")


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        RETRY = "retry", "Will retry"
        INFO = "info", "Info"

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text=escape("A username, or system:<task>"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    action = models.CharField(max_length=100, help_text="Namespaced, e.g. connection.updated")
    connection = models.ForeignKey(
        "connector.Connection",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="audit_events",
        db_constraint=False,
    )
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # Each index costs every audited write (one per webhook): the record timeline, the filters and search.
        indexes = [
            models.Index(fields=["target_type", "target_id", "occurred_at"], name="audit_target_idx"),
            models.Index(fields=["action"], name="audit_action_idx"),
            models.Index(fields=["correlation_id"], name="audit_correlation_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("Audit events are insert-only: they cannot be updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are insert-only: they cannot be deleted.")
