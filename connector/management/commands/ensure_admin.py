import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Make sure an admin login exists. Uses ADMIN_USERNAME / ADMIN_PASSWORD when set; otherwise creates "
        "'admin' with a generated password and prints it once."
    )

    def handle(self, *args, **options):
        username = self._ensure()
        host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("WEB_PORT", "8000")
        self.stdout.write(
            f"Sign in at http://{host}:{port}/admin/ as '{username}'. Forgot the password? "
            f".venv/bin/python manage.py changepassword {username}"
        )

    def _ensure(self) -> str:
        User = get_user_model()
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD", "")
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            if password and not existing.check_password(password):
                existing.set_password(password)
                existing.save(update_fields=["password"])
                self.stdout.write(f"Admin login '{username}': password updated from ADMIN_PASSWORD.")
            return username
        superuser = User.objects.filter(is_superuser=True).order_by("pk").first()
        if superuser is not None and "ADMIN_USERNAME" not in os.environ:
            return superuser.get_username()
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=os.environ.get("ADMIN_EMAIL", ""), password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin login '{username}' with password: {password}\n"
                    "It is shown only this once; change it in the admin or set ADMIN_PASSWORD."
                )
            )
        else:
            self.stdout.write(f"Created admin login '{username}' from ADMIN_PASSWORD.")
        return username
