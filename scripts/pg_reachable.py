"""Exit 0 when PostgreSQL answers on 127.0.0.1:5432 (used by `make test` to choose the database)."""

import socket
import sys

try:
    with socket.create_connection(("127.0.0.1", 5432), timeout=1):
        sys.exit(0)
except OSError:
    sys.exit(1)
