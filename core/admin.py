"""Admin base classes shared by every app."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ActionForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """What the connector and the systems wrote, shown and never edited here (records, deliveries, the audit
    trail, Fusion's cached reference data): actions do the changes that are allowed."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReasonActionForm(ActionForm):
    """An action form with a reason box: what the user says goes into the audit trail."""

    reason = forms.CharField(
        required=False, label="Reason", widget=forms.TextInput(attrs={"size": 50, "placeholder": "why (audited)"})
    )
