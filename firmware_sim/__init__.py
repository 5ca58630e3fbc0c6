"""firmware_sim: a simulated fleet with physics of wear, real failures and real customers.

Offline: :func:`generate` writes history to Parquet (``fleetcare sim generate``). Live:
:mod:`firmware_sim.live` drives devices through :mod:`device_sdk` (``fleetcare sim run``).
Ground truth (degradation onsets, failures, maintenance, sensor faults, renewal outcomes,
identity mapping, injected network faults) is written beside, never sent over the wire.
"""

from firmware_sim.config import ExportDefects, SensorImpairments, SimConfig
from firmware_sim.errors import OutputExistsError, SdkUnavailableError, SimConfigError, SimError
from firmware_sim.generate import GenerateResult, generate

__all__ = [
    "ExportDefects",
    "GenerateResult",
    "OutputExistsError",
    "SdkUnavailableError",
    "SensorImpairments",
    "SimConfig",
    "SimConfigError",
    "SimError",
    "generate",
]
