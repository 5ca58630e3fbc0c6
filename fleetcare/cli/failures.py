"""How the CLI reports fleetcare errors: a clear red message and exit code 2, no traceback."""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from fleetcare.cli.state import say, stderr_console
from fleetcare.errors import ConfigError, FleetcareError, ServiceUnavailableError

EXIT_SETUP_FAILURE = 2
"""Exit code for a configuration or service problem the user has to fix."""

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]*:)[^\s@]+@")


def redact_text(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``.

    >>> redact_text("got 'postgresql://app:s3cret@db/fc'")
    "got 'postgresql://app:***@db/fc'"
    """
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


def render_failure(exc: FleetcareError, console: Console) -> None:
    """Print ``exc`` for a person: what is wrong, where, and what was tried."""
    if isinstance(exc, ConfigError):
        say(console, "error: invalid configuration", style="bold red")
        for key, message in exc.problems:
            say(console, f"  {key}: {redact_text(message)}", style="red")
        return
    if isinstance(exc, ServiceUnavailableError):
        say(console, f"error: {exc.service} unreachable at {exc.target}", style="bold red")
        for attempt in exc.attempts:
            say(console, f"  tried: {redact_text(attempt)}", style="red")
        if exc.hint:
            say(console, f"  hint: {exc.hint}", style="yellow")
        return
    lines = redact_text(str(exc)).splitlines() or [type(exc).__name__]
    say(console, f"error: {lines[0]}", style="bold red")
    for line in lines[1:]:
        say(console, f"  {line}", style="red")


class FleetcareGroup(TyperGroup):
    """The root command group: turns a :class:`FleetcareError` from any command into a message."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FleetcareError as exc:
            render_failure(exc, stderr_console())
            raise typer.Exit(EXIT_SETUP_FAILURE) from None
