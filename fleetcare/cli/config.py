"""``fleetcare config``: the configuration reference."""

from __future__ import annotations

import typer

app = typer.Typer(help="Configuration: reference of every setting.", no_args_is_help=True)


def reference_sections() -> list[tuple[str, type]]:
    """The settings classes documented in docs/configuration.md, one section each."""
    from backend.care.settings import CareSettings
    from backend.customers.settings import CustomersSettings
    from backend.downlink.settings import DownlinkSettings
    from backend.ingest.settings import IngestSettings
    from backend.scoring.settings import ScoringSettings
    from backend.settings import BackendSettings
    from backend.storage.settings import MaintenanceSettings

    return [
        ("Backend (`backend.settings.BackendSettings`)", BackendSettings),
        ("Ingest (`backend.ingest.settings.IngestSettings`)", IngestSettings),
        ("Care (`backend.care.settings.CareSettings`)", CareSettings),
        ("Customers (`backend.customers.settings.CustomersSettings`)", CustomersSettings),
        ("Scoring (`backend.scoring.settings.ScoringSettings`)", ScoringSettings),
        ("Maintenance (`backend.storage.settings.MaintenanceSettings`)", MaintenanceSettings),
        ("Downlink (`backend.downlink.settings.DownlinkSettings`)", DownlinkSettings),
    ]


@app.command()
def reference() -> None:
    """Print the Markdown reference of every setting (the source of docs/configuration.md)."""
    from fleetcare.cli.reference import reference_markdown

    typer.echo(reference_markdown(reference_sections()), nl=False)
