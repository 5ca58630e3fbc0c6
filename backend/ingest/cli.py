"""``fleetcare ingest``: run the service (the default), inspect and replay dead letters.

Mounted by the root CLI as ``app.add_typer(ingest_cli.app, name="ingest")``; also runs on its
own as ``python -m backend.ingest``.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from backend.ingest.errors import NotMigratedError
from backend.ingest.settings import IngestSettings
from fleetcare.cli.service_options import log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state, say, stderr_console, stdout_console
from fleetcare.config import load_settings
from fleetcare.redact import redact_url

if TYPE_CHECKING:
    from backend.ingest.service import WorkerTarget
    from backend.settings import BackendSettings

app = typer.Typer(
    help="MQTT ingest: telemetry, usage, events and device state into the database.",
    invoke_without_command=True,
    no_args_is_help=False,
)
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

Workers = Annotated[
    int, typer.Option("--workers", "-w", min=1, max=64, help="worker processes (one per core)")
]
Duration = Annotated[
    float | None,
    typer.Option("--duration", min=0, help="seconds to run (default: until Ctrl-C / SIGTERM)"),
]
WorkerIndex = Annotated[
    int | None,
    typer.Option("--worker-index", min=0, hidden=True, help="run as worker i of a supervisor"),
]
Migrate = Annotated[
    bool,
    typer.Option("--migrate/--no-migrate", help="apply pending migrations before starting"),
]


def ingest_settings(ctx: typer.Context) -> IngestSettings:
    """Build and validate the ingest settings (``FLEETCARE_INGEST_*``, TOML ``[ingest]``)."""
    return load_settings(IngestSettings, cli_state(ctx).config_file)


@app.callback()
def main(
    ctx: typer.Context,
    workers: Workers = 1,
    duration: Duration = None,
    migrate: Migrate = False,
) -> None:
    """Run the ingest service when no sub-command is given."""
    if ctx.invoked_subcommand is None:
        run(ctx, workers=workers, duration=duration, worker_index=None, migrate=migrate)


def _retire_left_over_sessions(
    base: WorkerTarget, ingest: IngestSettings, workers: int, log: logging.Logger
) -> None:
    """Write and end what workers ``workers``, ``workers + 1``, … of an earlier, larger
    layout left in their sessions (a smaller ``--workers`` than last time)."""
    from backend.ingest.service import retire_sessions

    retired = retire_sessions(base, ingest, first_index=workers)
    if retired:
        log.info("sessions of an earlier, larger layout emptied and ended: %s", retired)


@app.command("run")
def run(
    ctx: typer.Context,
    workers: Workers = 1,
    duration: Duration = None,
    worker_index: WorkerIndex = None,
    migrate: Migrate = False,
) -> None:
    """Subscribe, validate, write in batches by COPY; acknowledge after each commit."""
    from backend.ingest.receiver import (
        choose_protocol,
        prepare_partition_sessions,
        require_single_worker,
    )
    from backend.ingest.service import IngestWorker, WorkerTarget, tune_gc_for_throughput
    from backend.ingest.supervisor import Supervisor, worker_env
    from backend.storage.migrator import apply_migrations
    from fleetcare.cli.waiting import wait_until_stopped
    from fleetcare.embedded.stack import ServiceStack

    settings = backend_settings(ctx)
    ingest = ingest_settings(ctx)
    log_to_stderr(settings.log_level)
    log = logging.getLogger("fleetcare.ingest")
    with ExitStack() as stack:
        database_url, broker_url = settings.database_url, settings.broker_url
        if database_url is None or broker_url is None:
            services = stack.enter_context(
                ServiceStack(settings, announce=lambda line: log.info("started %s", line))
            )
            database_url, broker_url = services.database_url, services.broker_url
            migrate = migrate or services.postgres is not None
        if migrate and worker_index is None:
            applied = apply_migrations(database_url, dialect=settings.storage_dialect)
            log.info("migrations: %s", ", ".join(applied.applied) or "up to date")
        mode = ingest.subscription_for(workers)
        base = WorkerTarget(database_url, broker_url, settings.topic_root)
        if worker_index is None and workers > 1:
            protocol = choose_protocol(broker_url)
            require_single_worker(protocol, workers, mode)
            if mode == "partitioned":
                prepare_partition_sessions(
                    broker_url,
                    settings.topic_root,
                    [f"{ingest.client_id_prefix}-{i}" for i in range(workers)],
                    protocol=protocol,
                    session_expiry_s=ingest.session_expiry_s,
                )
            _retire_left_over_sessions(base, ingest, workers, log)
            log.info(
                "ingest: %d workers (%s subscriptions), database %s, broker %s",
                workers,
                mode,
                redact_url(database_url),
                redact_url(broker_url),
            )
            supervisor = Supervisor(
                workers,
                {
                    **worker_env(database_url, broker_url, settings.topic_root),
                    "FLEETCARE_INGEST_SUBSCRIPTION": mode,
                },
                ["--duration", str(duration)] if duration is not None else [],
            )
            supervisor.run(duration)
            return
        target = WorkerTarget(
            database_url, broker_url, settings.topic_root, worker_index or 0, workers=workers
        )
        worker = IngestWorker(target, ingest)
        tune_gc_for_throughput()
        try:
            if worker_index is None:
                _retire_left_over_sessions(base, ingest, workers, log)
            worker.start()
        except NotMigratedError as exc:
            raise NotMigratedError(f"{exc} (or pass --migrate)") from None
        log.info(
            "ingest worker %s: database %s, broker %s (MQTT %s)",
            worker.client_id,
            redact_url(database_url),
            redact_url(broker_url),
            worker.receiver.protocol if worker.receiver else "?",
        )
        try:
            wait_until_stopped(duration)
        finally:
            worker.stop()


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="only this reason")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="rows at most")] = 50,
    pending: Annotated[
        bool, typer.Option("--pending", help="only dead letters not replayed yet")
    ] = False,
) -> None:
    """The newest dead letters, with a count per reason."""
    from backend.ingest.dlq import count_dead_letters, list_dead_letters

    database_url = _database_url(backend_settings(ctx))
    console = stdout_console()
    rows = list_dead_letters(database_url, reason=reason, limit=limit, include_replayed=not pending)
    table = Table(title=f"dead letters ({len(rows)} shown, newest first)")
    for column in ("id", "received", "reason", "device", "topic", "bytes", "detail", "replay"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            row.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.reason,
            row.device_ref or "",
            row.topic,
            str(row.size),
            row.detail,
            row.replay_result or "",
        )
    console.print(table)
    counts = count_dead_letters(database_url)
    summary = ", ".join(f"{r}: {n}" for r, n in counts.items()) or "none"
    say(console, f"not replayed, by reason: {summary}")


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    dead_letter_id: Annotated[
        list[int] | None, typer.Option("--id", help="replay this dead letter (repeatable)")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="replay every one of this reason")
    ] = None,
    all_pending: Annotated[
        bool, typer.Option("--all", help="replay every dead letter not replayed yet")
    ] = False,
) -> None:
    """Run dead letters through the checks and the writer again; mark each with its result."""
    from backend.ingest.dlq import missing_dead_letters, replay_dead_letters

    if not dead_letter_id and reason is None and not all_pending:
        raise typer.BadParameter("choose what to replay: --id N, --reason R or --all")
    settings = backend_settings(ctx)
    database_url = _database_url(settings)
    if dead_letter_id:
        missing = missing_dead_letters(database_url, list(dead_letter_id))
        if missing:
            say(stderr_console(), f"no dead letter with id {', '.join(map(str, missing))}", "red")
            if len(missing) == len(set(dead_letter_id)):
                raise typer.Exit(1)
    report = replay_dead_letters(
        database_url,
        settings.topic_root,
        ingest_settings(ctx),
        ids=list(dead_letter_id) if dead_letter_id else None,
        reason=reason,
        include_replayed=bool(dead_letter_id),
    )
    console = stdout_console()
    refused = ", ".join(f"{r}: {n}" for r, n in sorted(report.rejected.items())) or "none"
    say(
        console,
        f"replayed {report.replayed}: stored {report.stored}, still refused {refused}",
    )


def _database_url(settings: BackendSettings) -> str:
    if settings.database_url is None:
        raise typer.BadParameter(
            "FLEETCARE_DATABASE_URL is not set (dead letters live in a configured database)"
        )
    return settings.database_url
