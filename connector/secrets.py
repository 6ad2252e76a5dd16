"""Key rotation of the stored credentials."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.apps import apps as global_apps
from django.db import models as db_models
from django.db import transaction
from fernet_fields import EncryptedField

from audit.services import audit_record


def secrets_rotate(*, actor: Any = "system:rotate_secrets") -> dict[str, int]:
    """Re-encrypt every encrypted column of every model with the first of settings.FERNET_KEYS. Every value
    is decrypted first; if one cannot be read with any key, nothing is written. Returns rows per model."""
    plan: list[tuple[type[db_models.Model], list[str], list[tuple[Any, dict[str, Any]]]]] = []
    unreadable: list[str] = []
    for model in global_apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if not names:
            continue
        rows = []
        for pk in model._base_manager.order_by("pk").values_list("pk", flat=True):
            try:
                values = model._base_manager.filter(pk=pk).values(*names).get()
            except InvalidToken:
                unreadable.append(f"{model._meta.label} {pk}")
                continue
            rows.append((pk, values))
        plan.append((model, names, rows))
    if unreadable:
        raise ValueError(
            "These rows cannot be decrypted with any of FERNET_KEYS (add the key they were written with): "
            + ", ".join(unreadable)
        )
    counts: dict[str, int] = {}
    with transaction.atomic():
        for model, _names, rows in plan:
            for pk, values in rows:
                model._base_manager.filter(pk=pk).update(**values)
            counts[model._meta.label] = len(rows)
        audit_record(
            action="secrets.rotated",
            actor=actor,
            message="Stored credentials re-encrypted with the first FERNET_KEYS key",
            data={"rows": counts},
        )
    return counts
