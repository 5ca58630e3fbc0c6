"""The ``fleetcare`` command: the root options and one sub-command group per module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetcare import __version__
from fleetcare.cli import config, db, demo, doctor, services, up
from fleetcare.cli.failures import FleetcareGroup
from fleetcare.cli.state import CliState


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fleetcare {__version__}")
        raise typer.Exit


def root(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML settings file (default: $FLEETCARE_CONFIG); environment variables win",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """fleetcare: device telemetry to proactive customer care."""
    ctx.obj = CliState(config_file=config_file)


def build_app() -> typer.Typer:
    app = typer.Typer(
        cls=FleetcareGroup,
        name="fleetcare",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )
    app.callback()(root)
    app.add_typer(db.app, name="db")
    app.add_typer(services.app, name="services")
    app.add_typer(config.app, name="config")
    app.command("doctor")(doctor.doctor)
    _mount_application_clis(app)
    app.command("up")(up.up)
    app.command("demo")(demo.demo)
    return app


def _mount_application_clis(app: typer.Typer) -> None:
    """The command groups of the applications: each owns its sub-app next to its code."""
    from backend.api.cli import app as api_app
    from backend.care.cli import app as care_app
    from backend.customers.cli import app as accounts_app
    from backend.downlink.cli import app as downlink_app
    from backend.ingest.cli import app as ingest_app
    from backend.scoring.cli import app as scoring_app
    from backend.scoring.train_cli import train_fleet
    from dashboards.cli import app as dashboards_app
    from firmware_sim.cli import app as sim_app
    from gateway.cli import app as gateway_app
    from models.cli import app as models_app
    from models.cli import train_app

    groups: tuple[tuple[typer.Typer, str, str], ...] = (
        (ingest_app, "ingest", "MQTT to the database: the service and dead letters."),
        (scoring_app, "score", "Failure predictions for devices with new telemetry."),
        (care_app, "care", "Care engine: tickets, alerts, notifications, report, tuning."),
        (
            accounts_app,
            "accounts",
            "Customer accounts: import, identity, quality, health, segments, privacy.",
        ),
        (
            downlink_app,
            "downlink",
            "To the devices: desired configs and commands, and their answers.",
        ),
        (api_app, "api", "HTTP API: serve, OpenAPI spec, users, keys, devices."),
        (models_app, "models", "Train, evaluate, promote and list models."),
        (gateway_app, "gateway", "Edge gateway: store-and-forward, Modbus, edge inference."),
        (dashboards_app, "dashboards", "Grafana dashboards: build and push."),
        (sim_app, "sim", "Simulated fleet: run live through the SDK, generate history."),
    )
    for sub_app, name, help_text in groups:
        app.add_typer(sub_app, name=name, help=help_text)
    # Training on the fleet's own database reads backend tables, which the models library
    # does not know; the command lives with the scoring worker and joins `models train`.
    if not any(c.name == "fleet" for c in train_app.registered_commands):
        train_app.command("fleet")(train_fleet)


def main() -> None:
    build_app()()
