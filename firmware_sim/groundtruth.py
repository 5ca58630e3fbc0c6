"""What really happened, recorded as it happens. Never sent over the wire.

Times are absolute simulation steps; :mod:`firmware_sim.truth_files` turns them into
timestamps when writing ``ground_truth/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_sim.arraytypes import F32
from firmware_sim.maintenance import ModeChange


@dataclass(frozen=True)
class FailureRecord:
    """A failure: the machine stopped at ``step`` and was back at ``resolved_step``.

    ``degradation`` is the hidden degradation of ``mode`` at the failure: exactly 1.0 for
    a wear-out failure, and whatever the wear happened to be for a random one.
    """

    device_id: str
    machine_type: str
    step: int
    mode: str
    cause: str
    degradation: float
    resolved_step: int
    ticket_id: str
    repair_quality: str
    trip_code: str


@dataclass(frozen=True)
class OnsetRecord:
    """Degradation of ``mode`` began at ``step`` (``before_start``: before the simulation)."""

    device_id: str
    machine_type: str
    mode: str
    step: int
    before_start: bool


@dataclass(frozen=True)
class MaintenanceRecord:
    """A maintenance visit from ``step`` to ``end_step`` and what it did to each mode."""

    device_id: str
    machine_type: str
    step: int
    end_step: int
    kind: str
    quality: str
    changes: tuple[ModeChange, ...]


@dataclass(frozen=True)
class DeviceEvent:
    """An event the device itself reports (trip, restart, maintenance mode)."""

    device_id: str
    step: int
    kind: str
    code: str


@dataclass(frozen=True)
class BreakdownTicket:
    """The service ticket of a failure."""

    ticket_id: str
    device_id: str
    opened_step: int
    responded_step: int
    resolved_step: int
    mode: str
    cause: str


@dataclass
class DailyDegradation:
    """Hidden degradation of every device and wear mode at the end of a day."""

    machine_type: str
    day: int
    device_ids: tuple[str, ...]
    modes: tuple[str, ...]
    values: F32


@dataclass
class GroundTruthLog:
    failures: list[FailureRecord] = field(default_factory=list)
    onsets: list[OnsetRecord] = field(default_factory=list)
    maintenance: list[MaintenanceRecord] = field(default_factory=list)
    device_events: list[DeviceEvent] = field(default_factory=list)
    tickets: list[BreakdownTicket] = field(default_factory=list)
    degradation: list[DailyDegradation] = field(default_factory=list)

    def next_ticket_id(self) -> str:
        return f"SD-{100_000 + len(self.tickets)}"
