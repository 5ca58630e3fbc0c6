"""``fleetcare services up``: run the embedded database and broker for other processes to use."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from fleetcare.cli.state import backend_settings, say, stdout_console
from fleetcare.cli.waiting import wait_until_stopped
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url

app = typer.Typer(help="Embedded services for local development.", no_args_is_help=True)


@app.command()
def up(
    ctx: typer.Context,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0, help="stop after this many seconds (default: Ctrl-C)"),
    ] = None,
) -> None:
    """Start an embedded PostgreSQL and MQTT broker where none is configured, until Ctrl-C.

    Prints ``export`` lines; paste them into another shell so that its fleetcare commands use
    these services instead of starting their own.
    """
    settings = backend_settings(ctx)
    console = stdout_console()
    with ServiceStack(settings, announce=lambda line: say(console, f"started {line}")) as stack:
        exports: list[str] = []
        if stack.postgres is None:
            say(console, f"using the configured database {redact_url(stack.database_url)}")
        else:
            exports.append(f"export FLEETCARE_DATABASE_URL={shlex.quote(stack.database_url)}")
        if stack.broker is None:
            say(console, f"using the configured MQTT broker {redact_url(stack.broker_url)}")
        else:
            exports.append(f"export FLEETCARE_BROKER_URL={shlex.quote(stack.broker_url)}")
        if exports:
            say(console, "in another shell:")
            for line in exports:
                say(console, line)
        until = "Ctrl-C" if duration is None else f"{duration:g} s or Ctrl-C"
        interrupted = wait_until_stopped(
            duration, on_waiting=lambda: say(console, f"running until {until}")
        )
        say(console, "stopping (interrupted)" if interrupted else "stopping (duration elapsed)")
    say(console, "stopped")
