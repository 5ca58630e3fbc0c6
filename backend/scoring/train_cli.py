"""``fleetcare models train fleet``: a fleet model trained on this fleet's own history.

The root CLI mounts :func:`train_fleet` in the ``models train`` group; it lives here because
it reads the database (:mod:`backend.scoring.training_history`), which the ``models``
library does not know about.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.days import day_option
from fleetcare.cli.state import backend_settings, cli_state, say, stdout_console
from fleetcare.config import load_settings
from models.cli import announce_registered, exit_with_error, models_errors_reported
from models.fleet.repair_log import MODE_PATTERN

#: Fewer days than this leave too few windows (28 days each) and horizons (14) to learn from.
MIN_DAYS = 60
#: Feature rows checked onnxruntime against scikit-learn at export.
PARITY_ROWS = 500


def _parse_modes(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [n for n in names if not re.fullmatch(MODE_PATTERN, n)]
    if not names or bad:
        raise typer.BadParameter(
            f"give failure mode names like bearing_wear, comma-separated; got {text!r}",
            param_hint="--modes",
        )
    return sorted(set(names))


def train_fleet(
    ctx: typer.Context,
    machine_type: Annotated[
        str,
        typer.Option("--machine-type", help="catalogue model name or kind, e.g. centrifugal_pump"),
    ],
    days: Annotated[
        int, typer.Option("--days", min=MIN_DAYS, help="days of history, ending with --until")
    ] = 365,
    until: Annotated[
        str | None,
        typer.Option("--until", help="last day of history, YYYY-MM-DD (default: yesterday, UTC)"),
    ] = None,
    repair_log: Annotated[
        Path | None,
        typer.Option(
            "--repair-log",
            help="CSV of diagnosed breakdowns: device_id, failed_at, mode[, repaired_at]",
        ),
    ] = None,
    modes: Annotated[
        str | None,
        typer.Option(
            "--modes",
            help="failure modes to learn, comma-separated (default: every diagnosed mode)",
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option("--registry", help="registry folder (default: $FLEETCARE_MODEL_DIR)"),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="model name (default: fleet-<machine type>)")
    ] = None,
) -> None:
    """Fleet model trained on this fleet's database: daily rollups, failures from tickets.

    Failures come from tickets resolved as ``failure_confirmed`` and from a repair log;
    ``failure_prevented`` tickets and undiagnosed failure events are censored.
    """
    from backend.care.settings import CareSettings
    from backend.scoring.training_history import read_training_history
    from backend.storage.connect import connect
    from models.fleet.export import export_and_register, parity_inputs
    from models.fleet.repair_log import read_repair_log
    from models.fleet.training import MIN_FAILURES, FleetConfig, train_fleet_model
    from models.registry import FileRegistry
    from models.settings import ModelsSettings

    settings = backend_settings(ctx)
    if settings.database_url is None:
        raise typer.BadParameter("FLEETCARE_DATABASE_URL is not set")
    chosen = _parse_modes(modes) if modes is not None else None
    last = day_option(until, "--until") or datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    config_file = cli_state(ctx).config_file
    care = load_settings(CareSettings, config_file)
    registry_dir = registry or load_settings(ModelsSettings, config_file).registry_dir
    console = stdout_console()
    with models_errors_reported():
        repairs = read_repair_log(repair_log) if repair_log is not None else []
        with connect(settings.database_url) as conn:
            history = read_training_history(
                conn,
                machine_type,
                first,
                last + timedelta(days=1),
                failure_event_kinds=care.failure_event_kinds,
                repairs=repairs,
                modes=chosen,
            )
        daily, sources = history.daily, history.sources
        say(
            console,
            f"history: {len(daily.device_ids):,} devices of {machine_type}, {first} to {last} "
            f"({days} days), {len(daily.metrics)} metrics, "
            f"{daily.device_days_with_readings:,} device-days with readings",
        )
        say(
            console,
            f"failures: {sources.confirmed_tickets} from confirmed tickets, "
            f"{sources.repair_log} from the repair log; censored: {sources.prevented_tickets} "
            f"prevented (failure_prevented tickets), {sources.unattributed} failure event(s) "
            "without a diagnosis",
        )
        if sources.repair_log_elsewhere:
            say(
                console,
                f"  {sources.repair_log_elsewhere} repair-log row(s) name devices that are not "
                f"{machine_type} devices in this database: not used",
            )
        learnt = history.outcomes.modes
        trainable = [m for m in learnt if sources.failures.get(m, 0) >= MIN_FAILURES]
        for mode in sorted(set(learnt) | set(sources.failures)):
            count = sources.failures.get(mode, 0)
            if mode not in learnt:
                note = " (not learnt: not in --modes)"
            elif count < MIN_FAILURES:
                note = f" (fewer than {MIN_FAILURES}: no classifier)"
            else:
                note = ""
            say(console, f"  {mode}: {count} failure(s){note}")
        if not trainable:
            exit_with_error(
                f"no failure mode of {machine_type} has the {MIN_FAILURES} diagnosed failures a "
                "classifier needs in this range: record outcomes on resolved tickets, give "
                "--repair-log, or widen --days"
            )
        fleet_config = FleetConfig()
        model = train_fleet_model(daily, history.outcomes, fleet_config)
        entry = export_and_register(
            model,
            FileRegistry(registry_dir),
            training_data=(
                f"fleet database: {machine_type}, {len(daily.device_ids)} devices, {first} to "
                f"{last}; failures: {sources.confirmed_tickets} confirmed tickets, "
                f"{sources.repair_log} repair-log rows"
            ),
            training_sha256=history.sha256,
            parity_inputs=parity_inputs(daily, history.outcomes, fleet_config, PARITY_ROWS),
            name=name,
        )
    announce_registered(entry.name, entry.version, entry.metrics)
    say(console, f"thresholds: {', '.join(f'{m} {t:.2f}' for m, t in model.thresholds.items())}")
    say(console, f"serve it with: fleetcare models promote {entry.name} {entry.version}")
