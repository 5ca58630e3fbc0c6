"""``fleetcare db``: apply the storage migrations and show where a database stands."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fleetcare.cli.service_options import DurationOption, IntervalOption, log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state, say, stdout_console
from fleetcare.config import load_settings
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url

if TYPE_CHECKING:
    from backend.storage.maintenance import MaintenanceReport
    from backend.storage.settings import MaintenanceSettings

app = typer.Typer(help="Database schema: migrate, status, maintain.", no_args_is_help=True)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply the pending migrations (to the embedded database when none is configured)."""
    from backend.storage.migrator import apply_migrations

    settings = backend_settings(ctx)
    console = stdout_console()
    with ServiceStack(
        settings, services=("database",), announce=lambda line: say(console, line)
    ) as stack:
        target = (
            redact_url(stack.database_url) if stack.postgres is None else "the embedded database"
        )
        run = apply_migrations(stack.database_url, dialect=settings.storage_dialect)
    if run.applied:
        say(
            console, f"applied {len(run.applied)} migration(s) to {target} (dialect {run.dialect}):"
        )
        for name in run.applied:
            say(console, f"  {name}")
    else:
        say(console, f"{target} is up to date (dialect {run.dialect})")
    say(console, f"{run.already_applied} migration(s) were already applied")


@app.command()
def status(ctx: typer.Context) -> None:
    """List the applied and the pending migrations."""
    from backend.storage.migrator import migration_status

    settings = backend_settings(ctx)
    console = stdout_console()
    with ServiceStack(
        settings, services=("database",), announce=lambda line: say(console, line)
    ) as stack:
        current = migration_status(stack.database_url)
    say(console, f"dialect: {current.dialect or 'not chosen yet (no migration applied)'}")
    table = Table(title="applied migrations")
    for column in ("version", "name", "applied at"):
        table.add_column(column)
    for migration in current.applied:
        table.add_row(str(migration.version), migration.name, migration.applied_at.isoformat())
    console.print(table)
    if current.pending:
        say(
            console,
            f"pending: {', '.join(current.pending)} (run: fleetcare db migrate)",
            style="yellow",
        )
    else:
        say(console, "pending: none", style="green")


def _refresh_lookback(ctx: typer.Context, maintenance: MaintenanceSettings) -> timedelta:
    from backend.ingest.settings import IngestSettings
    from backend.storage.maintenance import refresh_lookback_for

    if maintenance.refresh_lookback_days is not None:
        return timedelta(days=maintenance.refresh_lookback_days)
    config = cli_state(ctx).config_file
    return refresh_lookback_for(load_settings(IngestSettings, config).max_past_s)


def _pass_summary(report: MaintenanceReport) -> str:
    dropped = {t: len(names) for t, names in report.retention.dropped.items() if names}
    deleted = {t: n for t, n in report.retention.deleted_rows.items() if n}
    return (
        f"{report.partitions_created} partition(s) created; rollups refreshed for "
        f"{report.refreshed_from:%Y-%m-%d %H:%M} .. {report.refreshed_to:%Y-%m-%d %H:%M} UTC; "
        f"retention: dropped {dropped or 'nothing'}, deleted rows {deleted or 'none'}; "
        f"{report.seconds:.2f} s"
    )


@app.command()
def maintain(
    ctx: typer.Context,
    continuous: Annotated[
        bool,
        typer.Option(
            "--continuous",
            help="a pass every interval until Ctrl-C (the `maintain` service of `fleetcare up`)",
        ),
    ] = False,
    interval: IntervalOption = None,
    duration: DurationOption = None,
) -> None:
    """Partitions ahead, rollups refreshed, retention applied: once, or every interval.

    Rollups are refreshed as far back as ingest accepts readings (late backlogs included).
    """
    from backend.storage.connect import connect
    from backend.storage.maintenance import Maintainer, run_maintenance
    from backend.storage.settings import MaintenanceSettings
    from fleetcare.cli.waiting import run_until_stopped

    settings = backend_settings(ctx)
    maintenance = load_settings(MaintenanceSettings, cli_state(ctx).config_file)
    console = stdout_console()
    lookback = _refresh_lookback(ctx, maintenance)
    with ServiceStack(
        settings, services=("database",), announce=lambda line: say(console, line)
    ) as stack:
        if not continuous:
            with connect(stack.database_url, settings.connect_timeout_s, autocommit=True) as conn:
                report = run_maintenance(conn, refresh_lookback=lookback)
            say(console, f"dialect {report.dialect}: {_pass_summary(report)}")
            return
        every = interval or maintenance.interval_s
        log_to_stderr(settings.log_level)
        log = logging.getLogger("fleetcare.maintenance")
        log.info(
            "maintenance: database %s, a pass every %.0f s, rollups refreshed %s back",
            redact_url(stack.database_url), every, lookback,
        )  # fmt: skip
        maintainer = Maintainer(stack.database_url, lookback, settings.connect_timeout_s)

        def passes(stop: threading.Event) -> None:
            maintainer.run(every, stop, lambda done: log.info("pass: %s", _pass_summary(done)))

        run_until_stopped("maintenance", passes, duration)
        say(console, f"{maintainer.passes} pass(es), {maintainer.failures} failed")
