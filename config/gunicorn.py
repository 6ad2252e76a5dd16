"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi` (Procfile).

Prometheus multiprocess mode: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (default
CONNECTOR_METRICS_DIR/web), which the master empties when it starts; a worker that exits is marked dead so its
live gauges drop out (its counters stay in the sums, as Prometheus expects of a counter).
"""

import os

from prometheus_client import multiprocess, values

from config.metrics_dir import multiprocess_dir_name, multiprocess_dir_reset

# prometheus_client decides where values are kept when it is first imported, which importing the `config`
# package above may already have done: name the directory, then have it decide again. Values are made when a
# metric is first used (in a worker, after the fork), so they all go to the files.
multiprocess_dir_name("web")
values.ValueClass = values.get_value_class()

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('WEB_PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = 30
accesslog = "-"


def on_starting(server):
    multiprocess_dir_reset()


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
