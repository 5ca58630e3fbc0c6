"""``python -m gateway run --config FILE``: the same as ``fleetcare gateway run``."""

from gateway.cli import app

app()
