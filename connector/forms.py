"""Admin forms. Secrets are write-only: the form never renders a stored secret, a blank box keeps it, and
clearing it takes an explicit tick."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from .connections import (
    SIDE_HOST_FIELDS,
    WEBHOOK_KEY_FIELDS,
    connection_config_fields,
    host_changes,
    required_secrets,
    secrets_kept_across_host_change,
)
from .models import SECRET_FIELDS, Connection, WebhookKey


class _Keep:
    def __repr__(self) -> str:
        return "<keep the stored secret>"


class _Clear:
    def __repr__(self) -> str:
        return "<clear the stored secret>"


KEEP = _Keep()
CLEAR = _Clear()

JOURNAL_MODE_HELP = (
    "Fusion's Create Accounting already carries every AR invoice to the general ledger. A sales journal on top "
    "books the same sale a second time unless its lines use accounts that AR accounting does not touch (for "
    "example a clearing account). Choose the sales journal only with such accounts in the mappings; otherwise "
    "keep None."
)


class SecretInput(forms.Widget):
    """A password box that never shows the stored value, a "stored" / "not set" note, and a "clear" tick."""

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(attrs)
        self.stored = False

    def render(self, name, value, attrs=None, renderer=None):  # value is ignored on purpose
        box = forms.PasswordInput(attrs={"autocomplete": "new-password", "class": "vTextField"}, render_value=False)
        final_attrs = self.build_attrs(self.attrs, attrs)
        input_id = final_attrs.get("id", f"id_{name}")
        clear_id = f"{input_id}__clear"
        clear = forms.CheckboxInput(attrs={"id": clear_id}).render(f"{name}__clear", False)
        state = format_html('<span class="secret-state">{}</span>', "stored" if self.stored else "not set")
        placeholder = "leave blank to keep the stored value" if self.stored else ""
        rendered_box = box.render(name, None, {"id": input_id, "placeholder": placeholder})
        return format_html(
            '{} {} <label for="{}" class="vCheckboxLabel inline">{}clear</label>',
            rendered_box,
            state,
            clear_id,
            clear,
        )

    def value_from_datadict(self, data, files, name):
        return (data.get(name, ""), bool(data.get(f"{name}__clear")))

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}__clear" not in data


class SecretField(forms.Field):
    """Cleans to a new secret, KEEP (blank) or CLEAR (the tick). The form resolves KEEP to the stored value."""

    widget = SecretInput

    def __init__(self, **kwargs: Any):
        kwargs["required"] = False
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, tuple):
            text, clear = value
        else:
            text, clear = value or "", False
        text = (text or "").strip()
        if clear and text:
            raise ValidationError("Either type a new value or tick “clear”, not both.")
        if clear:
            return CLEAR
        return text or KEEP

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            value = self.to_python(data)
        except ValidationError:
            return True
        if value is KEEP:
            return False
        if value is CLEAR:
            return bool(initial)
        return value != initial


class SecretFieldsMixin:
    """Resolve KEEP / CLEAR for the form's secret fields and tell each widget whether a value is stored."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for name in self.secret_fields:
            form_field = self.fields.get(name)  # type: ignore[attr-defined]
            if form_field is not None:
                form_field.widget.stored = bool(getattr(self.instance, name, ""))  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # type: ignore[misc]
        for name in self.secret_fields:
            if name not in cleaned:
                continue
            if cleaned[name] is KEEP:
                cleaned[name] = getattr(self.instance, name, "")  # type: ignore[attr-defined]
            elif cleaned[name] is CLEAR:
                cleaned[name] = ""
        return cleaned


def _host_change_help(side: str) -> str:
    return (
        f"Changing this host clears the stored {side} secrets unless you enter them again in the same change "
        "(the secrets are never sent to a host they were not entered for)."
    )


def _host_help_texts() -> dict[str, str]:
    texts = {}
    for side, names in SIDE_HOST_FIELDS.items():
        for name in names:
            example = str(getattr(Connection._meta.get_field(name), "help_text", ""))
            texts[name] = f"{example}. {_host_change_help(side)}" if example else _host_change_help(side)
    return texts


class ConnectionForm(SecretFieldsMixin, forms.ModelForm):
    secret_fields = SECRET_FIELDS

    fusion_client_secret = SecretField(label="Fusion client secret")
    fusion_password = SecretField(label="Fusion password")
    commerce_consumer_secret = SecretField(label="Commerce consumer secret")
    commerce_access_token = SecretField(label="Commerce access token")
    commerce_access_token_secret = SecretField(label="Commerce access token secret")
    commerce_client_secret = SecretField(label="Commerce (IMS) client secret")

    class Meta:
        model = Connection
        fields = connection_config_fields()
        help_texts = {"journal_mode": JOURNAL_MODE_HELP, **_host_help_texts()}

    def clean(self) -> dict[str, Any]:
        # Before the mixin turns a blank box into the stored value: which secrets were typed (or cleared).
        entered = frozenset(
            name for name in self.secret_fields if name in self.cleaned_data and self.cleaned_data[name] is not KEEP
        )
        cleaned = super().clean()
        if self.instance.pk is not None:
            self._check_secrets_after_host_change(cleaned, entered)
        self.instance.secrets_given = entered
        return cleaned

    def _check_secrets_after_host_change(self, cleaned: dict[str, Any], entered: frozenset[str]) -> None:
        """A changed host clears the side's stored secrets that are not typed again (connection_save): the ones
        the chosen auth needs must be typed again, or the connection could no longer sign in."""
        before = self.instance
        after = copy.copy(before)
        for name, value in cleaned.items():
            if hasattr(after, name) and name in self.fields:
                setattr(after, name, value)
        moved = host_changes(before=before, after=after)
        kept = secrets_kept_across_host_change(before=before, after=after, given=entered)
        needed = required_secrets(after)
        for side, names in kept.items():
            hosts = ", ".join(str(self.fields[name].label or name) for name in moved[side])
            for name in names:
                if name in needed[side]:
                    self.add_error(
                        name,
                        f"The {side} host changed ({hosts}): enter the {self.fields[name].label} again. A stored "
                        f"secret is not kept when its host changes.",
                    )


class WebhookKeyForm(SecretFieldsMixin, forms.ModelForm):
    secret_fields = ("secret",)

    secret = SecretField(label="Secret", help_text="HMAC shared secret (HMAC keys only)")

    class Meta:
        model = WebhookKey
        fields = WEBHOOK_KEY_FIELDS
