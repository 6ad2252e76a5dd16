"""The directories where processes write their Prometheus values (multiprocess mode, README "Metrics").

CONNECTOR_METRICS_DIR (default var/metrics) holds one directory per process group: `web` (gunicorn) and
`worker` (Celery). Each group's parent process (the gunicorn master, the Celery worker's main process) owns its
directory: it creates and empties it at start, before any child writes, and the scrape sums the files of all
groups. Kept free of prometheus_client: the process must name its directory (PROMETHEUS_MULTIPROC_DIR) before
prometheus_client is first imported, as that import decides where values are kept.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT_ENV = "CONNECTOR_METRICS_DIR"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "var" / "metrics"


def metrics_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def multiprocess_dir_name(group: str) -> Path:
    """Name this process group's directory for the processes it starts, unless the environment already does."""
    return Path(os.environ.setdefault(MULTIPROC_ENV, str(metrics_root() / group)))


def multiprocess_dir_reset() -> Path | None:
    """Create this process group's directory, empty: the values of processes from an earlier start are gone
    (a counter starting again from zero is a reset Prometheus expects). None when multiprocess mode is off."""
    value = os.environ.get(MULTIPROC_ENV)
    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    return path
