"""The degradation law and the wear state of a machine type's devices.

For each device and wear mode the hidden degradation ``d`` is a function of the mode's
accumulated stress-hours ``τ`` (operating hours weighted by how hard the mode is worked):

    d(τ) = a + b · (exp(λ · max(τ − τs, 0)) − 1)

``a`` is the initial (manufacturing or residual) wear, ``τs`` the onset, ``b`` the size of
the first defect and ``λ`` its growth rate. Before onset ``d = a``; after it, ``d`` grows
slowly at first and ever faster (a spreading spall, a widening leak). The mode fails the
machine when ``d`` reaches 1, at the stress ``τf = τs + ln(1 + (1 − a) / b) / λ``, so the
failure time of a wear-out failure is known exactly. Maintenance starts a new segment of
the same form (see :mod:`firmware_sim.maintenance`).

Random failures are a separate Poisson process in operating hours and leave no trace in
``d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.arraytypes import F64, Bool
from firmware_sim.catalogue import FailureModeSpec, MachineSpec

FAILURE_LEVEL = 1.0


@dataclass
class WearState:
    """Wear of every device (columns) in every wear mode (rows) of one machine type.

    Attributes:
        a, b, lam, tau_s: the current segment of the degradation law, ``[modes, devices]``.
        tau: stress-hours accumulated so far, ``[modes, devices]``.
        random_left_h: operating hours until the next random failure, ``[devices]``.
    """

    a: F64
    b: F64
    lam: F64
    tau_s: F64
    tau: F64
    random_left_h: F64

    def level(self) -> F64:
        """``d`` now, ``[modes, devices]``."""
        return degradation(self.a, self.b, self.lam, self.tau_s, self.tau)

    def tau_fail(self) -> F64:
        """Stress-hours at which each mode reaches the failure level, ``[modes, devices]``."""
        return self.tau_s + np.log1p((FAILURE_LEVEL - self.a) / self.b) / self.lam

    def progressing(self) -> Bool:
        return np.asarray(self.tau >= self.tau_s)


def degradation(a: F64, b: F64, lam: F64, tau_s: F64, tau: F64) -> F64:
    """The degradation law (broadcasting)."""
    excess = np.maximum(tau - tau_s, 0.0)
    return np.asarray(a + b * np.expm1(lam * excess), dtype=np.float64)


@dataclass(frozen=True)
class FreshComponent:
    """A new component's law: initial wear, onset (relative to now), defect size, rate."""

    a: float
    onset_h: float
    b: float
    lam: float


def draw_fresh(
    g: np.random.Generator, mode: FailureModeSpec, quality_factor: float = 1.0
) -> FreshComponent:
    """Draw a new component of ``mode``; ``quality_factor`` < 1 shortens its life."""
    a = float(g.uniform(0.0, 0.05))
    b = float(g.uniform(0.02, 0.06))
    onset = float(mode.onset_scale_h * g.weibull(mode.onset_shape) * g.lognormal(0.0, 0.3))
    progression = float(mode.progression_h * g.lognormal(0.0, mode.progression_sigma))
    progression = max(progression, 0.25 * mode.progression_h)
    lam = float(np.log1p((FAILURE_LEVEL - a) / b) / progression)
    return FreshComponent(a, onset * quality_factor, b, lam)


def initial_state(
    g: np.random.Generator, spec: MachineSpec, n: int, random_scale: float
) -> WearState:
    """Wear at the start of the simulation for ``n`` devices in service for a while.

    Each component's age is uniform over its life to failure, so some devices start
    healthy, some already degrading (onset before the start) and none failed.
    """
    modes = spec.wear_modes
    m = len(modes)
    a = g.uniform(0.0, 0.05, (m, n))
    b = g.uniform(0.02, 0.06, (m, n))
    onset = np.empty((m, n))
    progression = np.empty((m, n))
    for k, mode in enumerate(modes):
        onset[k] = mode.onset_scale_h * g.weibull(mode.onset_shape, n) * g.lognormal(0.0, 0.3, n)
        prog = mode.progression_h * g.lognormal(0.0, mode.progression_sigma, n)
        progression[k] = np.maximum(prog, 0.25 * mode.progression_h)
    lam = np.log1p((FAILURE_LEVEL - a) / b) / progression
    age = g.uniform(0.0, 0.97, (m, n)) * (onset + progression)
    tau_s = onset - age
    random_rate = sum(mode.random_rate_per_h for mode in spec.random_modes) * random_scale
    random_left = draw_random_left(g, random_rate, n)
    return WearState(a, b, lam, tau_s, np.zeros((m, n)), random_left)


def draw_random_left(g: np.random.Generator, rate_per_h: float, n: int) -> F64:
    """Operating hours to the next random failure (``inf`` when the rate is zero)."""
    if rate_per_h <= 0:
        return np.full(n, np.inf)
    return g.exponential(1.0 / rate_per_h, n)
