"""The trip code a machine's controller reports when it stops on a fault.

Controllers see symptoms, not causes: a code points at a failure mode only loosely, and
some failures trip with a generic code.
"""

from __future__ import annotations

import numpy as np

_CODES: dict[str, tuple[tuple[str, float], ...]] = {
    "bearing_wear": (("HIGH_VIBRATION", 0.55), ("OVERCURRENT", 0.2), ("GENERIC", 0.25)),
    "seal_leak": (("LOW_PRESSURE", 0.6), ("LEAK_DETECTED", 0.25), ("GENERIC", 0.15)),
    "strainer_clog": (("LOW_FLOW", 0.5), ("DRY_RUN", 0.3), ("GENERIC", 0.2)),
    "winding_overheat": (("MOTOR_OVERTEMP", 0.6), ("OVERCURRENT", 0.25), ("GENERIC", 0.15)),
    "inlet_filter_clog": (("HIGH_FILTER_DP", 0.6), ("GENERIC", 0.4)),
    "valve_leak": (("LOW_PRESSURE", 0.7), ("GENERIC", 0.3)),
    "cooler_fouling": (("HIGH_DISCHARGE_TEMP", 0.85), ("GENERIC", 0.15)),
    "drive_fault": (("DRIVE_FAULT", 0.7), ("GENERIC", 0.3)),
    "impeller_damage": (("HIGH_VIBRATION", 0.5), ("LOW_FLOW", 0.3), ("GENERIC", 0.2)),
    "electrical_fault": (("PHASE_LOSS", 0.6), ("GENERIC", 0.4)),
    "controller_fault": (("CONTROLLER", 0.5), ("GENERIC", 0.5)),
}


def trip_code(g: np.random.Generator, mode: str) -> str:
    """Draw the code reported for a failure of ``mode``."""
    options = _CODES.get(mode, (("GENERIC", 1.0),))
    probs = np.array([p for _, p in options])
    return options[int(g.choice(len(options), p=probs / probs.sum()))][0]
