"""``python -m backend.ingest``: the ingest CLI on its own (``fleetcare ingest`` when mounted)."""

from __future__ import annotations

import sys

from backend.ingest.cli import app
from fleetcare.cli.failures import EXIT_SETUP_FAILURE, render_failure
from fleetcare.cli.state import stderr_console
from fleetcare.errors import FleetcareError


def main() -> None:
    try:
        app(prog_name="fleetcare ingest")
    except FleetcareError as exc:
        render_failure(exc, stderr_console())
        sys.exit(EXIT_SETUP_FAILURE)


if __name__ == "__main__":
    main()
