"""Exceptions raised by ``backend.ingest``: every one derives from :class:`IngestError`."""

from __future__ import annotations

from fleetcare.errors import FleetcareError


class IngestError(FleetcareError):
    """Base class of the ingest's errors."""


class NotMigratedError(IngestError):
    """The database has no fleetcare schema yet (``fleetcare db migrate`` has not run)."""


class BrokerProtocolError(IngestError):
    """The broker accepted neither an MQTT 5 nor an MQTT 3.1.1 connection."""
