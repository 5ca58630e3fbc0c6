"""``fleetcare gateway``: run the edge gateway, or check its configuration file."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayConfigError

app = typer.Typer(
    help="Edge gateway: local MQTT and Modbus devices, store-and-forward, edge inference.",
    no_args_is_help=True,
)

ConfigFile = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="gateway configuration (TOML or YAML)", exists=False, dir_okay=False
    ),
]


def _load(path: Path) -> GatewayConfig:
    try:
        return load_config(path)
    except GatewayConfigError as exc:
        typer.secho(f"error: invalid gateway configuration ({exc.source})", fg="red", err=True)
        for key, message in exc.problems:
            typer.secho(f"  {key}: {message}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command("check")
def check(
    config_file: ConfigFile,
    syntax_only: Annotated[
        bool,
        typer.Option(
            "--syntax-only",
            help="check the file alone, not the files, model and data directory it names "
            "(a configuration written for another machine)",
        ),
    ] = False,
) -> None:
    """Validate a configuration file, the files it names and its model; summarise it."""
    from gateway.preflight import preflight_problems

    config = _load(config_file)
    problems = [] if syntax_only else preflight_problems(config)
    if problems:
        typer.secho(f"error: the gateway would not start ({config_file})", fg="red", err=True)
        for key, message in problems:
            typer.secho(f"  {key}: {message}", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(
        f"ok: gateway {config.gateway_id}, uplink {config.uplink.url}, "
        f"local {'none' if config.local is None else config.local.url}, "
        f"{len(config.site.modbus)} Modbus device(s), "
        f"inference {'on' if config.inference else 'off'}"
    )


@app.command("run")
def run(
    config_file: ConfigFile,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0, help="seconds to run (default: until signal)"),
    ] = None,
) -> None:
    """Run the gateway until SIGTERM or Ctrl-C (or for --duration seconds)."""
    config = _load(config_file)
    logging.basicConfig(
        level=getattr(logging, config.log_level),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(_serve(config, duration))
    except GatewayConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


async def _serve(config: GatewayConfig, duration: float | None) -> None:
    from gateway.service import Gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    await Gateway(config).run(stop)
