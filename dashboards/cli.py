"""``fleetcare dashboards``: generate the dashboard JSON, check it, push it to Grafana.

Mounted by the root CLI as ``app.add_typer(dashboards.cli.app, name="dashboards")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.state import backend_settings, say, stderr_console, stdout_console

app = typer.Typer(
    help="Grafana dashboards as code: build the JSON, push to Grafana.", no_args_is_help=True
)


@app.command("build")
def build(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="directory to write (default: dashboards/generated)"),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="write nothing; exit 1 if regeneration would change a file"),
    ] = False,
) -> None:
    """Generate one JSON file per dashboard from the Python definitions."""
    from dashboards.catalog import GENERATED_DIR, stale_files
    from dashboards.catalog import build as build_files

    directory = out or GENERATED_DIR
    if check:
        stale = stale_files(directory)
        if stale:
            say(stderr_console(), f"out of date in {directory}: {', '.join(stale)}", "red")
            say(stderr_console(), "run `fleetcare dashboards build`", "yellow")
            raise typer.Exit(1)
        say(stdout_console(), f"{directory}: up to date")
        return
    try:
        written = build_files(directory)
    except OSError as exc:
        say(stderr_console(), f"error: cannot write {directory}: {exc.strerror}", "red")
        raise typer.Exit(1) from None
    for path in written:
        say(stdout_console(), str(path))


@app.command("push")
def push(
    ctx: typer.Context,
    grafana_url: Annotated[
        str, typer.Option("--grafana-url", help="Grafana's base URL, e.g. http://localhost:3000")
    ],
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="FLEETCARE_GRAFANA_TOKEN",
            help="service-account token with the Editor role (or $FLEETCARE_GRAFANA_TOKEN)",
        ),
    ],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL as Grafana reaches it (default: the configured database URL)",
        ),
    ] = None,
    prometheus_url: Annotated[
        str,
        typer.Option("--prometheus-url", help="Prometheus URL as Grafana reaches it"),
    ] = "http://prometheus:9090",
    timescaledb: Annotated[
        bool,
        typer.Option(
            "--timescaledb/--no-timescaledb",
            help="the database has TimescaleDB (Grafana then groups with time_bucket)",
        ),
    ] = True,
) -> None:
    """Create or update the data sources, the folder and every dashboard (idempotent)."""
    from urllib.parse import urlsplit

    from dashboards.push import push as push_all

    for option, value in (("--grafana-url", grafana_url), ("--prometheus-url", prometheus_url)):
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise typer.BadParameter(
                f"{value!r} is not an http(s) URL (e.g. http://localhost:3000)", param_hint=option
            )
    url = database_url or backend_settings(ctx).database_url
    if not url:
        raise typer.BadParameter("no database URL: pass --database-url or configure one")
    try:
        results = push_all(
            grafana_url,
            token,
            database_url=url,
            prometheus_url=prometheus_url,
            timescaledb=timescaledb,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = stdout_console()
    for result in results:
        say(console, f"{result.kind:<10} {result.uid:<28} {result.action}")
