"""The simulator's exception tree."""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error raised by :mod:`firmware_sim`."""


class SimConfigError(SimError):
    """Arguments that cannot describe a simulation (no devices, unknown machine type, …)."""


class OutputExistsError(SimError):
    """The output directory already holds a simulation and overwriting was not asked for."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path} already holds simulator output (use --overwrite)")


class SdkUnavailableError(SimError):
    """The live runner needs :mod:`device_sdk`, which could not be imported."""
