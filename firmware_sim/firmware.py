"""What a simulated device's firmware does with the downlink: local alarm limits set through
its desired configuration, and a remote self-test command.

Desired configuration (``config/desired``)::

    {"alarm_limits": {"bearing_temp_c": {"max": 85.0}, "flow_lpm": {"min": 40}}}

Each limit applies to a metric of the device's catalogue; a reading that crosses one raises
a ``limit_exceeded`` event (warning) once, when it crosses, and again only after the metric
came back inside. An empty ``alarm_limits`` clears them. Anything else (an unknown setting
or metric, a limit that is not a finite number, ``min`` above ``max``) is rejected with the
reason, and the limits in force stay as they were.

The ``self_test`` command answers with the last reading and the limits it breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: The settings the simulated firmware understands.
KNOWN_SETTINGS = frozenset({"alarm_limits"})


@dataclass(frozen=True, slots=True)
class AlarmLimit:
    min: float | None = None
    max: float | None = None

    def breach(self, value: float) -> str | None:
        """``"max"`` or ``"min"`` when ``value`` lies beyond that limit, else ``None``."""
        if self.max is not None and value > self.max:
            return "max"
        if self.min is not None and value < self.min:
            return "min"
        return None

    def as_json(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass(frozen=True, slots=True)
class Crossing:
    """A reading that crossed a limit: ``side`` is ``"max"`` or ``"min"``."""

    metric: str
    value: float
    side: str
    limit: float

    @property
    def message(self) -> str:
        above = "above" if self.side == "max" else "below"
        return f"{self.metric} {self.value:.4g} {above} its limit {self.limit:g}"


class SimulatedFirmware:
    """One device's limits and alarm state (config handler and command handler of its SDK
    client; the simulator calls :meth:`crossings` with each reading)."""

    def __init__(self, device_id: str, metrics: frozenset[str]) -> None:
        self.device_id = device_id
        self.metrics = metrics
        self.limits: dict[str, AlarmLimit] = {}
        self._beyond: set[str] = set()

    def apply_config(self, desired: Any) -> dict[str, Any]:
        """The SDK's ``on_config`` handler: raises ``ValueError`` to reject."""
        config = desired.config
        unknown = sorted(set(config) - KNOWN_SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}")
        raw = config.get("alarm_limits", {})
        if not isinstance(raw, dict):
            raise ValueError("alarm_limits must be an object of metric: {min, max}")
        limits = {metric: self._limit(metric, spec) for metric, spec in raw.items()}
        self.limits = limits  # replaced whole: the simulator's thread reads it
        self._beyond = {m for m in self._beyond if m in limits}
        return {"alarm_limits": {metric: limit.as_json() for metric, limit in limits.items()}}

    def _limit(self, metric: str, spec: object) -> AlarmLimit:
        if metric not in self.metrics:
            raise ValueError(f"{metric!r} is not a metric of this device")
        if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
            raise ValueError(f"alarm_limits.{metric} must have min and/or max, nothing else")
        bounds: dict[str, float] = {}
        for side, value in spec.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"alarm_limits.{metric}.{side} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"alarm_limits.{metric}.{side} must be finite")
            bounds[side] = float(value)
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise ValueError(f"alarm_limits.{metric}: min is above max")
        return AlarmLimit(bounds.get("min"), bounds.get("max"))

    def crossings(self, metrics: dict[str, float | None]) -> list[Crossing]:
        """The limits this reading crosses on its way out (each once per excursion)."""
        limits = self.limits
        if not limits:
            return []
        found: list[Crossing] = []
        for metric, limit in limits.items():
            value = metrics.get(metric)
            if value is None:
                continue
            side = limit.breach(value)
            if side is None:
                self._beyond.discard(metric)
            elif metric not in self._beyond:
                self._beyond.add(metric)
                bound = limit.max if side == "max" else limit.min
                found.append(Crossing(metric, value, side, float(bound or 0.0)))
        return found

    def self_test(self, last: tuple[int, int, dict[str, float | None]] | None) -> dict[str, Any]:
        """The ``self_test`` answer: the last reading and the limits it breaks."""
        if last is None:
            return {"passed": False, "reason": "no reading yet"}
        seq, t_ms, metrics = last
        missing = sorted(m for m, v in metrics.items() if v is None)
        breaches = {
            metric: side
            for metric, limit in self.limits.items()
            if (value := metrics.get(metric)) is not None and (side := limit.breach(value))
        }
        return {
            "passed": not missing and not breaches,
            "reading_seq": seq,
            "reading_t": t_ms,
            "readings": {m: v for m, v in metrics.items() if v is not None},
            "missing": missing,
            "beyond_limits": breaches,
        }
