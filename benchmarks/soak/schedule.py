"""When the soak injects which fault: spread over the run, each kind once or twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["broker_restart", "ingest_kill", "database_outage"]


@dataclass(frozen=True)
class PlannedFault:
    at_s: float
    kind: FaultKind
    duration_s: float = 0.0


def fault_schedule(run_s: float, database_outage_s: float = 30.0) -> list[PlannedFault]:
    """Broker restarts at 20 % and 70 %, ingest SIGKILLs at 35 % and 85 %, the database
    stopped at 50 % for ``database_outage_s`` (at most a sixth of the run). Device link
    outages come from the simulator's own fault plan, spread over the whole run."""
    if run_s <= 0:
        raise ValueError("the run must last a positive time")
    outage = min(database_outage_s, run_s / 6)
    return sorted(
        [
            PlannedFault(0.20 * run_s, "broker_restart"),
            PlannedFault(0.35 * run_s, "ingest_kill"),
            PlannedFault(0.50 * run_s, "database_outage", outage),
            PlannedFault(0.70 * run_s, "broker_restart"),
            PlannedFault(0.85 * run_s, "ingest_kill"),
        ],
        key=lambda fault: fault.at_s,
    )
