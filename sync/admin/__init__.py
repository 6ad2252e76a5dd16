"""The admin screens that act on flows: connections (Test connection), records (replay, ignore) and the sync from
Fusion (settings, streams, runs, links)."""

from . import connections, fusion, reconciliation, records

__all__ = ["connections", "fusion", "reconciliation", "records"]
