"""``fleetcare up``: the whole backend on one machine, one process per service.

The database and broker come from the settings, or start embedded where none is configured;
migrations are applied; then every backend service runs as a child process with the service
URLs pinned in its environment, and is restarted with back-off if it dies. Ctrl-C or SIGTERM
stops the services first and the embedded database and broker last.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from fleetcare.cli.state import backend_settings, say, stdout_console
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url
from fleetcare.supervision import ProcessGroup, ProcessSpec


@dataclass(frozen=True)
class BackendService:
    """A service ``fleetcare up`` runs: its name and its ``fleetcare`` sub-command."""

    name: str
    command: tuple[str, ...]
    purpose: str


BACKEND_SERVICES: tuple[BackendService, ...] = (
    BackendService("ingest", ("ingest", "run"), "MQTT to the database"),
    BackendService("score", ("score",), "predictions for devices with new telemetry"),
    BackendService("care", ("care", "run"), "tickets, CSM alerts and notifications"),
    BackendService(
        "health", ("accounts", "health", "--continuous"), "account health scores (CSM alerts)"
    ),
    BackendService("api", ("api", "serve"), "HTTP API and console"),
    BackendService(
        "downlink", ("downlink", "run"), "desired configs and commands to devices, their answers"
    ),
    BackendService(
        "maintain", ("db", "maintain", "--continuous"), "partitions, rollups, retention"
    ),
)
SERVICE_NAMES = tuple(service.name for service in BACKEND_SERVICES)


def select_services(only: list[str] | None, skip: list[str] | None) -> list[BackendService]:
    """The services to run; unknown names are a usage error that lists the known ones."""
    for name in [*(only or []), *(skip or [])]:
        if name not in SERVICE_NAMES:
            raise typer.BadParameter(
                f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}",
                param_hint="--only/--skip",
            )
    chosen = [s for s in BACKEND_SERVICES if not only or s.name in only]
    return [s for s in chosen if s.name not in (skip or [])]


def service_env(database_url: str, broker_url: str, topic_root: str) -> dict[str, str]:
    """This process's environment with the services pinned, so children start nothing."""
    env = dict(os.environ)
    env["FLEETCARE_DATABASE_URL"] = database_url
    env["FLEETCARE_BROKER_URL"] = broker_url
    env["FLEETCARE_TOPIC_ROOT"] = topic_root
    return env


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _supervise(group: ProcessGroup, duration_s: float | None, console: Console) -> bool:
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    seen_restarts: dict[str, int] = {}
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.25)
            group.check()
            for status in group.status():
                if status.restarts > seen_restarts.get(status.name, 0):
                    say(
                        console,
                        f"{status.name} exited with {status.last_exit_code}; "
                        f"restarted ({status.restarts} so far)",
                        style="yellow",
                    )
                    seen_restarts[status.name] = status.restarts
    except KeyboardInterrupt:
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)
    return False


def up(
    ctx: typer.Context,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"run only these services ({', '.join(SERVICE_NAMES)})"),
    ] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave these out")] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0, help="stop after this many seconds (default: Ctrl-C)"),
    ] = None,
) -> None:
    """Run the whole backend: ingest, scoring, care and the API, restarted if they die."""
    from backend.storage.migrator import apply_migrations

    services = select_services(only, skip)
    if not services:
        raise typer.BadParameter("nothing to run", param_hint="--only/--skip")
    settings = backend_settings(ctx)
    console = stdout_console()
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO))
    with ServiceStack(settings, announce=lambda line: say(console, f"started {line}")) as stack:
        applied = apply_migrations(stack.database_url, dialect=settings.storage_dialect)
        say(console, f"database {redact_url(stack.database_url)}")
        say(console, f"  migrations: {', '.join(applied.applied) or 'up to date'}")
        say(console, f"broker {redact_url(stack.broker_url)}")
        specs = [
            ProcessSpec(s.name, [sys.executable, "-m", "fleetcare.cli", *s.command])
            for s in services
        ]
        group = ProcessGroup(
            specs, service_env(stack.database_url, stack.broker_url, settings.topic_root)
        )
        group.start()
        for service, status in zip(services, group.status(), strict=True):
            say(console, f"  {service.name:<7} pid {status.pid}: {service.purpose}")
        until = "Ctrl-C" if duration is None else f"{duration:g} s or Ctrl-C"
        say(console, f"running until {until}")
        try:
            interrupted = _supervise(group, duration, console)
        finally:
            group.stop()
        say(console, "stopped (interrupted)" if interrupted else "stopped (duration elapsed)")
