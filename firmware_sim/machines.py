"""The registry of machine types the simulator knows."""

from __future__ import annotations

from firmware_sim.catalogue import MachineSpec
from firmware_sim.compressor import CompressorModel
from firmware_sim.errors import SimConfigError
from firmware_sim.machine import MachineModel
from firmware_sim.pump import PumpModel

MACHINE_TYPES: tuple[str, ...] = ("centrifugal_pump", "air_compressor")


def machine_model(name: str) -> MachineModel:
    """A fresh physics model of machine type ``name``."""
    if name == "centrifugal_pump":
        return PumpModel()
    if name == "air_compressor":
        return CompressorModel()
    raise SimConfigError(f"unknown machine type {name!r}; known: {', '.join(MACHINE_TYPES)}")


def machine_spec(name: str) -> MachineSpec:
    """The metric catalogue and failure modes of machine type ``name``."""
    return machine_model(name).spec
