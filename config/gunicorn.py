"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi` (Procfile).

Prometheus multiprocess mode: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (default
CONNECTOR_METRICS_DIR/web), which the master empties when it starts; a worker that exits is marked dead so its
live gauges drop out (its counters stay in the sums, as Prometheus expects of a counter).
"""

import os

from config.metrics_dir import multiprocess_dir_name, multiprocess_dir_reset

# Before prometheus_client is imported, here or in a worker: the import decides where values are kept.
multiprocess_dir_name("web")

from prometheus_client import multiprocess  # noqa: E402

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('WEB_PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = 30
accesslog = "-"


def on_starting(server):
    multiprocess_dir_reset()


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
