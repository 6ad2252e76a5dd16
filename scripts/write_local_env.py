"""Write a local .env for `make run` on a fresh machine: generated keys, cookies usable over plain http on
127.0.0.1. Production sets these variables itself (see .env.example)."""

import secrets
import sys
from pathlib import Path

target = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
if target.exists():
    sys.exit(0)
target.write_text(
    "# Written by `make run` for local use. See .env.example for every variable.\n"
    f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"FERNET_KEYS={secrets.token_urlsafe(32)}\n"
    "SECURE_COOKIES=0\n"
    "ALLOWED_HOSTS=localhost,127.0.0.1,[::1]\n"
)
target.chmod(0o600)
print(f"Wrote {target} with freshly generated keys (keep it: it decrypts the stored credentials).")
