"""``fleetcare doctor``: is this machine ready to run fleetcare, and if not, what to fix."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fleetcare.cli.checks import (
    CheckResult,
    Status,
    check_broker,
    check_data_dir,
    check_database,
    check_embedded_broker,
    check_embedded_database,
    check_tools,
)
from fleetcare.cli.state import backend_settings, say, stdout_console

_STYLES = {Status.OK: "green", Status.INFO: "cyan", Status.WARN: "yellow", Status.FAIL: "bold red"}


def render_table(rows: list[CheckResult]) -> Table:
    table = Table(title="fleetcare doctor", show_lines=False)
    for column in ("check", "status", "detail", "how to fix"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            Text(row.check),
            Text(str(row.status), style=_STYLES[row.status]),
            Text(row.detail),
            Text(row.fix),
        )
    return table


def doctor(
    ctx: typer.Context,
    start_embedded: Annotated[
        bool,
        typer.Option(
            "--start-embedded",
            help="start the embedded database/broker where none is configured and check them too",
        ),
    ] = False,
) -> None:
    """Check the configured database and broker, the data directory and optional tools.

    Exits with code 1 when a required check fails.
    """
    settings = backend_settings(ctx)
    console = stdout_console()
    rows: list[CheckResult] = [check_data_dir(settings.data_dir)]
    with ExitStack() as resources:
        database_url, broker_url = settings.database_url, settings.broker_url
        if start_embedded and (database_url is None or broker_url is None):
            from fleetcare.embedded.stack import ServiceStack

            stack = resources.enter_context(
                ServiceStack(settings, announce=lambda line: say(console, f"started {line}"))
            )
            database_url, broker_url = stack.database_url, stack.broker_url
        if database_url is None:
            rows.append(check_embedded_database(settings.data_dir))
        else:
            rows.extend(check_database(database_url, settings))
        if broker_url is None:
            rows.append(check_embedded_broker())
        else:
            rows.append(check_broker(broker_url, settings.connect_timeout_s))
    rows.extend(check_tools())
    console.print(render_table(rows))
    failed = [row.check for row in rows if row.status is Status.FAIL]
    if failed:
        say(
            console,
            f"{len(failed)} required check(s) failed: {', '.join(failed)}",
            style="bold red",
        )
        raise typer.Exit(1)
    say(console, "all required checks passed", style="green")
