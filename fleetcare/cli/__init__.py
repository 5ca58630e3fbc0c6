"""The ``fleetcare`` command line."""
