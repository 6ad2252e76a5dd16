"""The admin screens that act on flows: connections (Test connection) and records (replay, ignore)."""

from . import connections, records

__all__ = ["connections", "records"]
