"""``fleetcare score``: run the scoring worker once (``--once``) or every interval.

Mounted by the root CLI as ``app.add_typer(backend.scoring.cli.app, name="score")``.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Annotated, cast

import typer

from backend.scoring.settings import ScoringSettings
from fleetcare.cli.service_options import DurationOption, IntervalOption, log_to_stderr
from fleetcare.cli.state import backend_settings, cli_state, say, stdout_console
from fleetcare.config import load_settings
from fleetcare.redact import redact_url

app = typer.Typer(
    help="Failure predictions for devices with new telemetry (champion fleet models).",
    invoke_without_command=True,
    no_args_is_help=False,
)


def scoring_settings(ctx: typer.Context) -> ScoringSettings:
    return load_settings(ScoringSettings, cli_state(ctx).config_file)


@app.callback()
def score(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    interval: IntervalOption = None,
    duration: DurationOption = None,
) -> None:
    """Score every device whose telemetry is newer than its last prediction."""
    if ctx.invoked_subcommand is not None:
        return
    from backend.ingest.metrics import IngestMetrics, serving
    from backend.scoring.worker import PassReport, ScoringWorker
    from fleetcare.cli.waiting import run_until_stopped
    from models.registry import FileRegistry
    from models.settings import ModelsSettings

    settings = backend_settings(ctx)
    scoring = scoring_settings(ctx)
    log_to_stderr(settings.log_level)
    if settings.database_url is None:
        raise typer.BadParameter("FLEETCARE_DATABASE_URL is not set")
    from backend.storage.connect import connect

    connect(settings.database_url).close()  # unreachable: what was tried, not a traceback
    registry_dir = (
        scoring.registry_dir
        or load_settings(ModelsSettings, cli_state(ctx).config_file).registry_dir
    )
    worker = ScoringWorker(
        settings.database_url,
        FileRegistry(registry_dir),
        batch_size=scoring.batch_size,
        lookback_days=scoring.lookback_days,
        top_contributions=scoring.top_contributions,
        onnx_threads=scoring.onnx_threads,
        day_grace_minutes=scoring.day_grace_minutes,
    )
    console = stdout_console()
    log = logging.getLogger("fleetcare.scoring")
    log.info("scoring: database %s, registry %s", redact_url(settings.database_url), registry_dir)

    def report(done: PassReport) -> None:
        for m in done.models:
            say(
                console,
                f"{m.model} {m.version} ({m.device_model}): {m.scored} scored, "
                f"{m.skipped} without data in the window, {m.seconds:.2f} s",
            )
        if scoring.metrics_file is not None:
            worker.metrics.write(scoring.metrics_file)

    if once:
        done = worker.run_once()
        report(done)
        say(console, f"{done.scored} device(s) scored in {done.seconds:.2f} s")
        return
    with ExitStack() as stack:
        port = stack.enter_context(
            serving(cast(IngestMetrics, worker.metrics), scoring.metrics_host, scoring.metrics_port)
        )
        if port is not None:
            log.info("metrics on http://%s:%d/metrics", scoring.metrics_host, port)
        every = interval or scoring.interval_s
        run_until_stopped("scoring", lambda stop: worker.run(every, stop, report), duration)
