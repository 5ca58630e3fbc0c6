"""``fleetcare db``: apply the storage migrations and show where a database stands."""

from __future__ import annotations

import typer
from rich.table import Table

from fleetcare.cli.state import backend_settings, say, stdout_console
from fleetcare.embedded.stack import ServiceStack
from fleetcare.redact import redact_url

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


@app.command()
def maintain(ctx: typer.Context) -> None:
    """One maintenance pass: partitions ahead, rollups refreshed, retention applied."""
    from backend.storage.connect import connect
    from backend.storage.maintenance import run_maintenance

    settings = backend_settings(ctx)
    console = stdout_console()
    with (
        ServiceStack(
            settings, services=("database",), announce=lambda line: say(console, line)
        ) as stack,
        connect(stack.database_url, settings.connect_timeout_s, autocommit=True) as conn,
    ):
        report = run_maintenance(conn)
    say(console, f"dialect {report.dialect}: {report.partitions_created} partition(s) created")
    say(
        console,
        f"rollups refreshed for {report.refreshed_from:%Y-%m-%d %H:%M} .. "
        f"{report.refreshed_to:%Y-%m-%d %H:%M} UTC",
    )
    dropped = {t: len(names) for t, names in report.retention.dropped.items() if names}
    deleted = {t: n for t, n in report.retention.deleted_rows.items() if n}
    say(console, f"retention: dropped {dropped or 'nothing'}; deleted rows {deleted or 'none'}")
