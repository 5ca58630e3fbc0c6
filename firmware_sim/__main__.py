"""``python -m firmware_sim``: the ``fleetcare sim`` commands."""

from firmware_sim.cli import app

app()
