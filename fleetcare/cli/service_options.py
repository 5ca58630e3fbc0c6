"""What the commands of the backend's services share: options and logging.

``fleetcare score``, ``fleetcare db maintain --continuous`` and ``fleetcare accounts health
--continuous`` run a pass every interval until Ctrl-C, SIGTERM or ``--duration``; they, and
``fleetcare ingest run`` and ``fleetcare care run``, log to stderr the same way (under
``fleetcare up`` they share one stream, so each line names its process).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

IntervalOption = Annotated[
    float | None,
    typer.Option("--interval", min=1, help="seconds between passes (default: settings)"),
]
DurationOption = Annotated[
    float | None,
    typer.Option("--duration", min=0, help="seconds to run (default: until Ctrl-C)"),
]


def log_to_stderr(level: str) -> None:
    """Timestamped log lines on stderr at ``level`` (the backend setting ``log_level``)."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
