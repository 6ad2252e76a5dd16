"""Admin forms. Secrets are write-only: the form never renders a stored secret, a blank box keeps it, and
clearing it takes an explicit tick."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from .connections import WEBHOOK_KEY_FIELDS, connection_config_fields
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
        help_texts = {"journal_mode": JOURNAL_MODE_HELP}


class WebhookKeyForm(SecretFieldsMixin, forms.ModelForm):
    secret_fields = ("secret",)

    secret = SecretField(label="Secret", help_text="HMAC shared secret (HMAC keys only)")

    class Meta:
        model = WebhookKey
        fields = WEBHOOK_KEY_FIELDS
