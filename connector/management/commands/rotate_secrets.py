from django.core.management.base import BaseCommand, CommandError

from connector.secrets import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with the first key of FERNET_KEYS. Rotate by putting a new key "
        "first (keep the old ones after it), running this, then removing the old keys."
    )

    def handle(self, *args, **options):
        try:
            counts = secrets_rotate(actor="system:rotate_secrets")
        except ValueError as exc:
            raise CommandError(f"Nothing was re-encrypted. {exc}") from None
        for label, rows in counts.items():
            self.stdout.write(f"{label}: {rows} row(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS("Every encrypted value now uses the first FERNET_KEYS key."))
