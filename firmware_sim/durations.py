"""Parsing durations such as ``90s``, ``15m``, ``2h``, ``7d`` (CLI arguments)."""

from __future__ import annotations

import re
from datetime import timedelta

from firmware_sim.errors import SimConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> timedelta:
    """``"90"``/``"90s"`` → 90 s; ``"2h"`` → 2 h; ``"1.5d"`` → 36 h."""
    match = _PATTERN.match(text)
    if match is None:
        raise SimConfigError(f"cannot read duration {text!r} (examples: 90s, 15m, 2h, 7d)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    seconds = value * _UNITS[unit]
    if seconds <= 0:
        raise SimConfigError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)
