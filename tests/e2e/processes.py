"""Real processes for end-to-end tests: gunicorn, a Celery worker and beat, started against the test
database and a Redis on loopback, stopped (and their logs shown on failure) when the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db_connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS_HOST, REDIS_PORT = settings.TEST_REDIS_HOST, settings.TEST_REDIS_PORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_services() -> None:
    """Skip, saying why, when PostgreSQL or Redis is not there."""
    if db_connection.vendor != "postgresql":
        pytest.skip("end-to-end runs need PostgreSQL (several processes share the database)")
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1):
            pass
    except OSError:
        pytest.skip("end-to-end runs need Redis on 127.0.0.1:6379")


def process_env(*, broker_db: int, cache_db: int) -> dict[str, str]:
    db = db_connection.settings_dict
    database_url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=f"{database_url}/{db['NAME']}",
        TEST_CELERY_BROKER_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{broker_db}",
        REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{cache_db}",
        SECRET_KEY=settings.SECRET_KEY,
        FERNET_KEYS=",".join(settings.FERNET_KEYS),
        CONNECTOR_ALLOW_LOCAL_ENDPOINTS="1",
        CONNECTOR_UNKNOWN_OUTCOME_DELAY_SECONDS="2",  # the mock commits before it drops: no need to wait long
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def flush_redis(*dbs: int) -> None:
    import redis

    for db in dbs:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen, Path]] = []
        self.killed: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        proc = subprocess.Popen(  # noqa: S603 - our own executables from the venv
            [str(BIN / args[0]), *args[1:]],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, proc, log))
        return proc

    def web(self, port: int, workers: int = 2) -> None:
        self.start("web", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers))

    def worker(self, concurrency: int = 4, name: str = "worker") -> None:
        self.start(
            name,
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )

    def beat(self) -> None:
        self.start(
            "beat",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(self.log_dir / "beat-schedule"),
        )

    def kill(self, name: str) -> None:
        """SIGKILL the named process and its children, as the kernel's OOM killer or a lost host would: no
        clean-up runs. It is no longer watched by check_alive; its log stays in logs()."""
        for entry in list(self.running):
            if entry[0] == name and entry[1].poll() is None:
                os.killpg(entry[1].pid, signal.SIGKILL)
                entry[1].wait()
                self.running.remove(entry)
                self.killed.append(entry)

    def check_alive(self) -> None:
        for name, proc, log in self.running:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")

    def stop(self) -> None:
        for _, proc, _ in self.running:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for _, proc, _ in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{log.read_text()[-3000:]}" for name, _, log in [*self.killed, *self.running])


@contextmanager
def processes(env: dict[str, str], log_dir: Path):
    procs = Processes(env, log_dir)
    try:
        yield procs
    except BaseException:
        print(procs.logs())  # shown by pytest on failure
        raise
    finally:
        procs.stop()


def wait_for(predicate, *, timeout: float, interval: float = 0.5, procs: Processes | None = None, what: str = ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if procs is not None:
            procs.check_alive()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate.__name__}")
