"""The seam between the engine and one machine type's physics.

The engine owns time, schedules, wear state and events; a :class:`MachineModel` turns
operating conditions and hidden degradation into true sensor values and tells the engine
how much each wear mode is stressed. Arrays are ``[devices, steps]`` float32, rows in the
order of the devices given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from firmware_sim.arraytypes import F32, F64, I64, Bool
from firmware_sim.catalogue import MachineSpec


class ParamTable(Mapping[str, F64]):
    """Per-device parameters (one float64 array per name, all of one length)."""

    def __init__(self, columns: Mapping[str, F64]) -> None:
        self._columns = dict(columns)

    def __getitem__(self, key: str) -> F64:
        return self._columns[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def take(self, rows: I64) -> ParamTable:
        """The parameters of ``rows`` only."""
        return ParamTable({k: v[rows] for k, v in self._columns.items()})

    def scaled(self, key: str, factor: F64) -> ParamTable:
        """A copy with column ``key`` multiplied by ``factor``."""
        columns = dict(self._columns)
        columns[key] = columns[key] * factor
        return ParamTable(columns)

    def col(self, key: str) -> F32:
        """Column ``key`` as a float32 ``[devices, 1]`` array, ready to broadcast."""
        return self._columns[key].astype(np.float32)[:, None]


@dataclass
class BlockInputs:
    """Operating conditions and hidden state of a block of devices over a span of steps.

    Attributes:
        running: the machine is switched on and not down.
        load: demand in [0, 1] (pump: flow set point; compressor: air demand).
        ambient: ambient temperature, °C.
        degradation: hidden degradation per wear mode, ``[modes, devices, steps]``.
        step_index: absolute step number of each column (for cyclic controls).
        step_h: hours per step.
    """

    running: Bool
    load: F32
    ambient: F32
    degradation: F32
    step_index: I64
    step_h: float


class MachineModel(Protocol):
    """Physics of one machine type."""

    spec: MachineSpec

    def sample_units(self, rng: np.random.Generator, n: int, hz60: Bool) -> ParamTable:
        """Draw ``n`` units' parameters: ratings and manufacturing variation."""
        ...

    def stress(
        self,
        running: Bool,
        load: F32,
        ambient: F32,
        degradation_now: F32,
        units: ParamTable,
        step_h: float,
    ) -> F32:
        """Stress-hours accrued by each wear mode in each step, ``[modes, devices, steps]``.

        ``degradation_now`` is ``[modes, devices]`` at the start of the span (wear modes
        interact: a clogged strainer makes a pump cavitate and wears its seal faster).
        """
        ...

    def true_values(
        self, inputs: BlockInputs, units: ParamTable, thermal: dict[str, F32]
    ) -> dict[str, F32]:
        """Noise-free sensor values, one ``[devices, steps]`` array per metric.

        ``thermal`` holds the first-order lag states (one ``[devices]`` array per heated
        part) and is updated in place to the end of the span.
        """
        ...
