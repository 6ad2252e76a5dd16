"""Helpers for tests about encrypted credentials."""

from django.apps import apps
from fernet_fields import EncryptedField

# Distinctive values: if one shows up anywhere it leaked.
SECRET_VALUES = {
    "fusion_client_secret": "fcs-9f3c1b7e-plaintext-should-never-show",
    "fusion_password": "fpw-Zq81!-plaintext-should-never-show",
    "commerce_consumer_secret": "ccs-4d2a-plaintext-should-never-show",
    "commerce_access_token": "cat-77e1-plaintext-should-never-show",
    "commerce_access_token_secret": "cats-0b5e-plaintext-should-never-show",
    "commerce_client_secret": "ims-cs-c3d9-plaintext-should-never-show",
}
WEBHOOK_SECRET = "whsec-5e8f-plaintext-should-never-show"
ALL_SECRETS = (*SECRET_VALUES.values(), WEBHOOK_SECRET)


def encrypted_fields():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedField):
                yield field


def forget_fernet_keys():
    """fernet_fields caches the keys on each field (cached_property): drop them so FERNET_KEYS is re-read."""
    for field in encrypted_fields():
        for name in ("keys", "fernet_keys", "fernet"):
            field.__dict__.pop(name, None)


def assert_no_secret_in(text, secrets=ALL_SECRETS):
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"secret(s) leaked: {leaked}"
