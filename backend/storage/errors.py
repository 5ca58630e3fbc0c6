"""Exceptions raised by ``backend.storage``."""

from __future__ import annotations

from fleetcare.errors import FleetcareError


class StorageError(FleetcareError):
    """Base class of storage errors."""


class MigrationError(StorageError):
    """A migration could not be loaded or applied.

    Attributes:
        version: the migration version concerned, when there is one.
    """

    def __init__(self, message: str, version: int | None = None) -> None:
        self.version = version
        super().__init__(message)


class MigrationDriftError(MigrationError):
    """An applied migration's file changed after it was applied (checksum mismatch)."""


class DialectError(StorageError):
    """The requested storage dialect cannot be used on this database."""
