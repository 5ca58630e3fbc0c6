"""A tiny simulated fleet and a tiny fleet model trained on it (shared by the fleet tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from firmware_sim import SimConfig, generate
from models.fleet.daily import DailyMeans
from models.fleet.labels import Outcomes
from models.fleet.training import FleetConfig, TrainedFleetModel, load_history, train_fleet_model

MACHINE_TYPE = "centrifugal_pump"
SIM = SimConfig(
    devices=24,
    days=120,
    interval_s=3600,
    seed=5,
    pump_share=1.0,
    wear_acceleration=6.0,
    start=date(2025, 1, 1),
)
CONFIG = FleetConfig(window_days=21, horizon_days=10, rul_cap_days=40, max_iter=30, seed=0)


@dataclass(frozen=True)
class TinyFleet:
    history: Path
    daily: DailyMeans
    outcomes: Outcomes
    model: TrainedFleetModel


def make_tiny_fleet(folder: Path) -> TinyFleet:
    history = folder / "history"
    generate(SIM, history)
    daily, outcomes = load_history(history, MACHINE_TYPE)
    return TinyFleet(history, daily, outcomes, train_fleet_model(daily, outcomes, CONFIG))
