"""What a machine type is made of: its metric catalogue and its failure modes.

These are value objects only; the physics that turns hidden state into readings lives in
one module per machine type (:mod:`firmware_sim.pump`, :mod:`firmware_sim.compressor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cause = Literal["wear", "random"]


@dataclass(frozen=True)
class MetricSpec:
    """One sensor channel.

    Attributes:
        name: column name in Parquet and key in the SDK payload (``snake_case`` with unit).
        unit: physical unit.
        low, high: the sensor's measuring range; readings saturate there.
        resolution: the sensor's quantisation step; readings are multiples of it.
        noise: standard deviation of additive Gaussian noise, in ``unit``.
        noise_rel: standard deviation of multiplicative noise, as a fraction of the value.
        description: what the sensor measures.
        cutoff: readings below it read exactly 0 (low-flow / standstill cut-off).
    """

    name: str
    unit: str
    low: float
    high: float
    resolution: float
    noise: float
    noise_rel: float = 0.0
    description: str = ""
    cutoff: float = 0.0


@dataclass(frozen=True)
class FailureModeSpec:
    """One way a machine fails.

    Wear modes (``cause='wear'``) follow the degradation law of :mod:`firmware_sim.wear`:
    a hidden degradation ``d`` stays at its initial level until an onset, then grows
    exponentially in stress-weighted operating hours and fails the machine at ``d = 1``.

    Attributes:
        onset_scale_h: Weibull scale of the stress-hours from a new component to onset.
        onset_shape: Weibull shape of the same.
        progression_h: median stress-hours from onset to failure.
        progression_sigma: log-normal spread of ``progression_h`` between units.
        pm_reset: fraction of ``d`` that a good preventive maintenance removes (0: none).
        signature: the metrics in which the degradation shows, strongest first.
        falls: the signature metrics that fall as the mode progresses (the others rise).
        random_rate_per_h: for random modes, the hazard per operating hour.
    """

    name: str
    cause: Cause
    description: str
    signature: tuple[str, ...] = ()
    falls: tuple[str, ...] = ()
    onset_scale_h: float = 0.0
    onset_shape: float = 2.0
    progression_h: float = 0.0
    progression_sigma: float = 0.35
    pm_reset: float = 0.0
    random_rate_per_h: float = 0.0


@dataclass(frozen=True)
class MachineSpec:
    """A machine type: its metric catalogue and failure modes."""

    name: str
    prefix: str
    description: str
    metrics: tuple[MetricSpec, ...]
    wear_modes: tuple[FailureModeSpec, ...]
    random_modes: tuple[FailureModeSpec, ...]

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def wear_mode_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.wear_modes)

    def metric(self, name: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise KeyError(name)
