"""`make demo`: the connector and the mock Fusion and Commerce on this machine, a demo connection with mappings,
and a stream of signed Commerce documents, one of which needs review. Ctrl-C stops everything.

Runs on what `make run` runs on (SQLite and an embedded broker under var/ unless DATABASE_URL etc. say
otherwise). Ports: WEB_PORT (8000), FUSION_MOCK_PORT (8801), COMMERCE_MOCK_PORT (8802). The demo admin login is
DEMO_ADMIN_USERNAME / DEMO_ADMIN_PASSWORD (demo / demo): this machine only, never on a shared database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("WEB_PORT", "8000")
    env.setdefault("FUSION_MOCK_PORT", "8801")
    env.setdefault("COMMERCE_MOCK_PORT", "8802")
    env.update(
        {
            "CONNECTOR_MOCKS": "1",
            "CONNECTOR_ALLOW_LOCAL_ENDPOINTS": "1",
            "CONNECTOR_PUBLIC_URL": f"http://{env['HOST']}:{env['WEB_PORT']}",
            "ADMIN_USERNAME": env.get("DEMO_ADMIN_USERNAME", "demo"),
            "ADMIN_PASSWORD": env.get("DEMO_ADMIN_PASSWORD", "demo"),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603 - fixed commands


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback address
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_for(urls: list[str], honcho: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if honcho.poll() is not None:
            raise SystemExit("A process stopped while starting (see its output above).")
        if all(answers(u) for u in urls):
            return
        time.sleep(1)
    raise SystemExit(f"Not up after {timeout:.0f} s: {', '.join(u for u in urls if not answers(u))}")


def banner(env: dict[str, str]) -> str:
    base = env["CONNECTOR_PUBLIC_URL"]
    rule = "=" * 100
    return f"""
{rule}
The demo is running. Sign in at {base}/admin/ as {env["ADMIN_USERNAME"]} / {env["ADMIN_PASSWORD"]}.

  What to do is printed just above (Records needing review -> add the product rule -> Replay).

  More orders:  CONNECTOR_PUBLIC_URL={base} .venv/bin/python manage.py send_test_webhook demo \\
                    --order 2001 --sku SKU-LAPTOP-15:2            (--kind invoice / creditmemo: its documents)
  The mocks:    {base.rsplit(":", 1)[0]}:{env["FUSION_MOCK_PORT"]}/__mock__/state (Fusion),
                {base.rsplit(":", 1)[0]}:{env["COMMERCE_MOCK_PORT"]}/__mock__/state (Commerce)
  Ctrl-C stops everything.
{rule}
"""


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, or a TERM from a supervisor, stops honcho and its processes (even where SIGINT started ignored).
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    env = demo_env()
    host, fusion_port, commerce_port = env["HOST"], env["FUSION_MOCK_PORT"], env["COMMERCE_MOCK_PORT"]
    fusion_url, commerce_url = f"http://{host}:{fusion_port}", f"http://{host}:{commerce_port}"
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    manage(env, "ensure_admin")
    manage(env, "seed_demo", "--fusion-url", fusion_url, "--commerce-url", commerce_url)
    manage(env, "ensure_schedules")
    # Its own session: Ctrl-C reaches this script only, which then stops honcho, which stops its processes.
    honcho = subprocess.Popen(  # noqa: S603 - fixed command
        [str(BIN / "honcho"), "start", "-f", "Procfile.demo"], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        health = f"{env['CONNECTOR_PUBLIC_URL']}/healthz"
        wait_for([health, f"{fusion_url}/__mock__/state", f"{commerce_url}/__mock__/state"], honcho)
        manage(env, "seed_demo", "--fusion-url", fusion_url, "--commerce-url", commerce_url, "--send", "--wait", "90")
        print(banner(env), flush=True)
        return honcho.wait()
    except (KeyboardInterrupt, subprocess.CalledProcessError, SystemExit) as exc:
        if not isinstance(exc, KeyboardInterrupt):
            print(f"The demo stopped: {exc}", file=sys.stderr, flush=True)
        return 0 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)
            try:
                honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait()
        print("Demo stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
