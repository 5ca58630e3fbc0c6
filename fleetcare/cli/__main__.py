"""``python -m fleetcare.cli``: the same as the ``fleetcare`` command."""

from fleetcare.cli.app import main

main()
