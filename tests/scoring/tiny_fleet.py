"""A tiny simulated fleet and a tiny fleet model trained on it (shared by the fleet tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq

from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.migrator import dialect_of
from backend.storage.telemetry import Reading, insert_readings
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


def _readings(history: Path, source: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The simulated readings of ``source`` in ``[start, end)``."""
    frames = [
        pq.read_table(file, filters=[("device_id", "=", source)]).to_pandas()
        for file in sorted((history / "telemetry" / MACHINE_TYPE).glob("*.parquet"))
    ]
    frame = pd.concat(frames)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)]


class Fleet:
    """Simulated devices copied into the database, one database device per source device."""

    def __init__(self, url: str, fleet: TinyFleet) -> None:
        self.url = url
        self.fleet = fleet
        self.metrics = fleet.daily.metrics
        with psycopg.connect(url, autocommit=True) as conn:
            specs = [MetricSpec(name=m) for m in self.metrics]
            # A product name, as in a manufacturer's catalogue; the machine type is the kind.
            self.model_id = ensure_device_model(conn, "CP-80", MACHINE_TYPE, specs)
        self.seq: dict[int, int] = {}

    def write(self, name: str, source: str, start: datetime, end: datetime,
              skip: tuple[datetime, datetime] | None = None, refresh: bool = True) -> int:  # fmt: skip
        """Copy ``source``'s readings in ``[start, end)`` to device ``name``; ``refresh``:
        bring the rollups up to date over that range (else :meth:`refresh` later, once)."""
        frame = _readings(self.fleet.history, source, start, end)
        with psycopg.connect(self.url, autocommit=True) as conn:
            device = ensure_device(conn, name, self.model_id)
            readings = []
            for row in frame.itertuples(index=False):
                ts = row.ts.to_pydatetime()
                if skip is not None and skip[0] <= ts < skip[1]:
                    continue
                seq = self.seq.get(device, 0)
                self.seq[device] = seq + 1
                vals = [None if np.isnan(v) else float(v) for v in row[2:]]
                readings.append(Reading(ts, device, seq, vals))
            dialect = dialect_of(conn)
            with psycopg.connect(self.url) as tx:
                insert_readings(tx, dialect, readings)
        if refresh:
            self.refresh(start, end)
        return device

    def refresh(self, start: datetime, end: datetime) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            dialect_of(conn).refresh_rollups(
                conn, start - timedelta(days=1), end + timedelta(days=1)
            )
