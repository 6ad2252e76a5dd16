"""What the `mock_*` management commands share: one flag per fault (the same names as POST /__mock__/faults),
the listening address, and serving until Ctrl-C."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mocks.server import Faults, MockServer


def add_fault_arguments(parser, faults_class: type[Faults] = Faults) -> None:
    """One CLI flag per fault (--latency-ms, --error-rate, ...), so the command line matches /__mock__/faults."""
    for f in dataclasses.fields(faults_class):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        text = faults_class.HELP.get(f.name, f.name)
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif f.type in ("int", int):
            parser.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
        elif f.type in ("float", float):
            parser.add_argument(flag, type=float, default=default, help=f"{text} (default {default})")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random faults, for reproducible runs")


def faults_from_options(options: dict[str, Any], faults_class: type[Faults] = Faults) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(faults_class)} - {"fail_next"}
    return {name: options[name] for name in names if options.get(name) is not None}


def add_server_arguments(parser, *, port: int) -> None:
    """The listening address of a mock_* command."""
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def serve_from_command(command, build: Callable[[], MockServer], *, host: str, port: int, banner: str) -> None:
    """The body of a mock_* command: build the mock (a refused flag is a CommandError), print the banner, serve
    until Ctrl-C."""
    # Imported here so the mock itself stays usable without Django.
    from django.core.management.base import CommandError

    try:
        mock = build()
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    command.stdout.write(
        banner + "\n  (the connector needs CONNECTOR_ALLOW_LOCAL_ENDPOINTS=1 to call it). Ctrl-C stops it."
    )
    try:
        mock.serve_forever(host, port)
    except KeyboardInterrupt:
        command.stdout.write("Stopped.")
    except OSError as exc:
        raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
