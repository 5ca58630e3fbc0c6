"""Field service: how long a failed machine stays down, and the ticket that tracks it.

A failure trips the machine; the customer (or the machine's alarm) opens a ticket after a
short delay; a technician responds after a delay set by the service tier (longer at
weekends for the lower tiers); the repair takes a time set by the failure mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_RESPONSE_H = {"basic": (40.0, 0.6), "standard": (16.0, 0.6), "premium": (5.0, 0.5)}
_REPAIR_H = {
    "bearing_wear": 7.0,
    "seal_leak": 4.0,
    "strainer_clog": 1.5,
    "winding_overheat": 30.0,
    "inlet_filter_clog": 1.0,
    "valve_leak": 3.0,
    "cooler_fouling": 5.0,
    "drive_fault": 4.0,
    "impeller_damage": 12.0,
    "electrical_fault": 3.0,
    "controller_fault": 6.0,
}


@dataclass(frozen=True)
class Repair:
    """Timings of one breakdown, in hours after the failure."""

    opened_h: float
    responded_h: float
    resolved_h: float


def repair_timing(g: np.random.Generator, tier: str, mode: str, weekend: bool) -> Repair:
    opened = float(g.exponential(0.75))
    median, sigma = _RESPONSE_H[tier]
    response = float(g.lognormal(np.log(median), sigma))
    if weekend and tier != "premium":
        response += 24.0
    repair = float(_REPAIR_H.get(mode, 4.0) * g.lognormal(0.0, 0.4))
    return Repair(opened, opened + response, opened + response + repair)


def pm_duration_h(g: np.random.Generator) -> float:
    return float(g.uniform(1.0, 4.0))
