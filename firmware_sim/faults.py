"""Fault injection for live runs: what to break, when, and the log of what was broken.

A :class:`FaultSpec` says how many faults of each kind to inject; :func:`plan_faults`
turns it into exact, deterministic :class:`PlannedFault` s (which device or site, which
step, for how long). The live runner executes the plan and appends one
:class:`FaultRecord` per executed fault to ``faults.jsonl`` in the ground-truth
directory, so tests and evaluations can check that exactly the faults asked for happened.

Kinds:

* ``device_outage`` / ``site_outage``: the device's (or every device of a site's)
  network path to the broker is cut: connections are dropped and refused for
  ``steps`` steps. The SDK keeps queueing and delivers after the outage.
* ``duplicate``: an already-sent reading is published again, same ``(device, seq)``.
* ``malformed``: a payload that does not decode is published on the device's topic.
* ``out_of_order``: a reading is held back and recorded ``steps`` steps later with its
  original timestamp, so it arrives after newer ones.
* ``clock_skew``: from ``step`` on, the device's clock is ``skew_s`` off.
* ``reboot``: the device's client stops and starts again (same durable queue).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from firmware_sim.fleet import Fleet
from firmware_sim.seeds import Stream, rng

FAULT_KINDS: tuple[str, ...] = (
    "device_outage",
    "site_outage",
    "duplicate",
    "malformed",
    "out_of_order",
    "clock_skew",
    "reboot",
)


class FaultSpec(BaseModel):
    """How many faults of each kind to inject in a live run (counts are exact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_outage: int = Field(0, ge=0)
    site_outage: int = Field(0, ge=0)
    duplicate: int = Field(0, ge=0)
    malformed: int = Field(0, ge=0)
    out_of_order: int = Field(0, ge=0)
    clock_skew: int = Field(0, ge=0)
    reboot: int = Field(0, ge=0)
    outage_steps: tuple[int, int] = (3, 15)
    delay_steps: tuple[int, int] = (2, 10)
    skew_s: tuple[float, float] = (-900.0, 900.0)

    def total(self) -> int:
        return sum(getattr(self, kind) for kind in FAULT_KINDS)


@dataclass(frozen=True)
class PlannedFault:
    """One fault to inject. ``step`` is relative to the first published step."""

    kind: str
    step: int
    device_ids: tuple[str, ...]
    site_id: str
    steps: int
    skew_s: float


@dataclass(frozen=True)
class FaultRecord:
    """One executed fault, as ground truth."""

    kind: str
    step: int
    sim_time: str
    device_ids: tuple[str, ...]
    site_id: str
    steps: int
    skew_s: float
    detail: str


def plan_faults(seed: int, spec: FaultSpec, fleet: Fleet, total_steps: int) -> list[PlannedFault]:
    """Draw exactly the faults of ``spec`` over ``total_steps`` published steps."""
    g = rng(seed, Stream.FAULTS)
    devices = [d.device_id for d in fleet.devices]
    sites = sorted({d.site_id for d in fleet.devices})
    site_devices = {s: tuple(d.device_id for d in fleet.devices if d.site_id == s) for s in sites}
    last = max(1, total_steps - 1)
    plan: list[PlannedFault] = []
    for kind in FAULT_KINDS:
        for _ in range(getattr(spec, kind)):
            step = int(g.integers(1, last)) if last > 1 else 0
            span = 0
            skew = 0.0
            site = ""
            if kind == "site_outage":
                site = sites[int(g.integers(len(sites)))]
                ids = site_devices[site]
            else:
                ids = (devices[int(g.integers(len(devices)))],)
            if kind in ("device_outage", "site_outage"):
                span = int(g.integers(spec.outage_steps[0], spec.outage_steps[1] + 1))
            elif kind == "out_of_order":
                span = int(g.integers(spec.delay_steps[0], spec.delay_steps[1] + 1))
                step = min(step, max(0, total_steps - span - 1))
            elif kind == "clock_skew":
                skew = float(round(g.uniform(*spec.skew_s), 3))
            plan.append(PlannedFault(kind, step, ids, site, span, skew))
    plan.sort(key=lambda f: (f.step, FAULT_KINDS.index(f.kind), f.device_ids))
    return plan


class FaultLog:
    """Appends executed faults to ``faults.jsonl`` (and keeps them in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        self.records: list[FaultRecord] = []

    def add(self, record: FaultRecord) -> None:
        self.records.append(record)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(record)) + "\n")

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(FAULT_KINDS, 0)
        for r in self.records:
            out[r.kind] += 1
        return out


def read_fault_log(path: Path) -> list[FaultRecord]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            raw["device_ids"] = tuple(raw["device_ids"])
            records.append(FaultRecord(**raw))
    return records
