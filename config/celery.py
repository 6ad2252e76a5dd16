import os

from celery import Celery, signals
from django.db import close_old_connections
from prometheus_client import multiprocess

from config.metrics_dir import multiprocess_dir_reset

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ml_connector")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _metrics_dir_reset(**kwargs):
    """The worker's main process owns its metrics directory (PROMETHEUS_MULTIPROC_DIR, set by the Procfile):
    emptied at start, before the pool's children write to it."""
    multiprocess_dir_reset()


@signals.worker_process_shutdown.connect
def _metrics_process_dead(pid=None, **kwargs):
    """A pool child that exits: its live gauges drop out of the sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


@signals.task_prerun.connect
@signals.task_postrun.connect
def _db_connections_tidy(task=None, **kwargs):
    """Around each task, what Django does around each request: drop a connection that is older than CONN_MAX_AGE
    or unusable after an error, and health-check a kept one on its next use. An eager task runs inside its
    caller's connection and transaction: left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
