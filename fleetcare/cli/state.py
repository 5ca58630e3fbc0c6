"""What every command shares: the global options, the settings loader and the consoles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from fleetcare.config import load_settings

if TYPE_CHECKING:
    from backend.settings import BackendSettings


@dataclass(frozen=True)
class CliState:
    """The root options, stored as the root context's ``obj``.

    Attributes:
        config_file: the ``--config`` TOML file; ``None`` falls back to ``FLEETCARE_CONFIG``.
    """

    config_file: Path | None = None


def cli_state(ctx: typer.Context) -> CliState:
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


def backend_settings(ctx: typer.Context, **overrides: Any) -> BackendSettings:
    """Build and validate the backend settings once for this command.

    Raises:
        ConfigError: naming each bad key (the CLI prints it and exits with code 2).
    """
    from backend.settings import BackendSettings

    return load_settings(BackendSettings, cli_state(ctx).config_file, **overrides)


def stdout_console() -> Console:
    """A console for results; no syntax highlighting, so URLs and paths print as they are."""
    return Console(highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def say(console: Console, text: str, style: str | None = None) -> None:
    """Print ``text`` literally (no markup, no wrapping inside URLs or paths)."""
    console.print(text, style=style, markup=False, soft_wrap=True)
