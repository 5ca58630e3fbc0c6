"""Writing ``ground_truth/``: what really happened, for evaluation code only."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from firmware_sim.config import SimConfig
from firmware_sim.engagement import Engagement
from firmware_sim.engine import Simulation
from firmware_sim.fleet import Fleet
from firmware_sim.outcomes import Outcome
from firmware_sim.schema import TS
from firmware_sim.tickets import Ticket


def _ts(config: SimConfig, steps: Sequence[int]) -> pa.Array:
    start_ms = int((config.start - date(1970, 1, 1)).total_seconds()) * 1000
    ms = np.asarray(steps, dtype=np.int64) * (config.interval_s * 1000) + start_ms
    return pa.array(ms, type=TS)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _records(rows: Sequence[Any]) -> dict[str, list[Any]]:
    if not rows:
        return {}
    names = [f.name for f in dataclasses.fields(rows[0])]
    return {n: [getattr(r, n) for r in rows] for n in names}


def write_ground_truth(
    truth_dir: Path,
    config: SimConfig,
    fleet: Fleet,
    engagement: Engagement,
    sim: Simulation,
    tickets: list[Ticket],
    outcomes: list[Outcome],
) -> list[Path]:
    truth_dir.mkdir(parents=True, exist_ok=True)
    log = sim.log
    written: list[Path] = []

    def put(name: str, table: pa.Table) -> None:
        path = truth_dir / f"{name}.parquet"
        _write(table, path)
        written.append(path)

    put(
        "accounts",
        pa.table(
            {
                k: [str(v) if isinstance(v, date) else v for v in vals]
                for k, vals in _records(fleet.accounts).items()
            }
        ),
    )
    put("sites", pa.table(_records(fleet.sites)))
    devs = _records(fleet.devices)
    devs["installed_on"] = [d.isoformat() for d in devs["installed_on"]]
    put("devices", pa.table(devs))
    failures = sorted(log.failures, key=lambda f: (f.step, f.device_id))
    put(
        "failures",
        pa.table(
            {
                "device_id": pa.array([f.device_id for f in failures], pa.string()),
                "machine_type": pa.array([f.machine_type for f in failures], pa.string()),
                "failed_at": _ts(config, [f.step for f in failures]),
                "mode": pa.array([f.mode for f in failures], pa.string()),
                "cause": pa.array([f.cause for f in failures], pa.string()),
                "degradation": pa.array([f.degradation for f in failures], pa.float64()),
                "resolved_at": _ts(config, [f.resolved_step for f in failures]),
                "downtime_h": pa.array(
                    [(f.resolved_step - f.step) * config.step_h for f in failures], pa.float64()
                ),
                "ticket_id": pa.array([f.ticket_id for f in failures], pa.string()),
                "repair_quality": pa.array([f.repair_quality for f in failures], pa.string()),
                "trip_code": pa.array([f.trip_code for f in failures], pa.string()),
            }
        ),
    )
    onsets = sorted(log.onsets, key=lambda o: (o.step, o.device_id, o.mode))
    put(
        "degradation_onsets",
        pa.table(
            {
                "device_id": pa.array([o.device_id for o in onsets], pa.string()),
                "machine_type": pa.array([o.machine_type for o in onsets], pa.string()),
                "mode": pa.array([o.mode for o in onsets], pa.string()),
                "onset_at": _ts(config, [o.step for o in onsets]),
                "before_start": pa.array([o.before_start for o in onsets], pa.bool_()),
            }
        ),
    )
    visits = sorted(log.maintenance, key=lambda m: (m.step, m.device_id))
    put(
        "maintenance",
        pa.table(
            {
                "device_id": pa.array([m.device_id for m in visits], pa.string()),
                "machine_type": pa.array([m.machine_type for m in visits], pa.string()),
                "started_at": _ts(config, [m.step for m in visits]),
                "ended_at": _ts(config, [m.end_step for m in visits]),
                "kind": pa.array([m.kind for m in visits], pa.string()),
                "quality": pa.array([m.quality for m in visits], pa.string()),
                "changes": pa.array(
                    [json.dumps([dataclasses.asdict(c) for c in m.changes]) for m in visits],
                    pa.string(),
                ),
            }
        ),
    )
    faults = [(t.spec.name, t.ids, f) for t in sim.types for f in t.sensors.all_faults()]
    faults.sort(key=lambda x: (x[2].start, x[1][x[2].device], x[2].metric, x[2].kind))
    put(
        "sensor_faults",
        pa.table(
            {
                "device_id": pa.array([ids[f.device] for _, ids, f in faults], pa.string()),
                "machine_type": pa.array([t for t, _, _ in faults], pa.string()),
                "metric": pa.array([f.metric for _, _, f in faults], pa.string()),
                "kind": pa.array([f.kind for _, _, f in faults], pa.string()),
                "start_at": _ts(config, [f.start for _, _, f in faults]),
                "end_at": _ts(config, [f.end for _, _, f in faults]),
                "value": pa.array([f.value for _, _, f in faults], pa.float64()),
            }
        ),
    )
    dates, dev_ids, modes, values = [], [], [], []
    for snap in log.degradation:
        day = config.start + timedelta(days=snap.day)
        m, n = snap.values.shape
        dates += [day] * (m * n)
        modes += [mode for mode in snap.modes for _ in range(n)]
        dev_ids += list(snap.device_ids) * m
        values.append(snap.values.reshape(-1))
    put(
        "degradation_daily",
        pa.table(
            {
                "date": pa.array(dates, pa.date32()),
                "device_id": pa.array(dev_ids, pa.string()),
                "mode": pa.array(modes, pa.string()),
                "degradation": pa.array(np.concatenate(values) if values else [], pa.float32()),
            }
        ),
    )
    acc = [a.account_id for a in fleet.accounts]
    days = [config.start + timedelta(days=d) for d in range(config.days)]
    put(
        "engagement_daily",
        pa.table(
            {
                "date": pa.array([d for _ in acc for d in days], pa.date32()),
                "account_id": pa.array([a for a in acc for _ in days], pa.string()),
                "engagement": pa.array(engagement.values[:, 1:].reshape(-1), pa.float32()),
            }
        ),
    )
    put(
        "tickets",
        pa.table(
            {
                "ticket_id": pa.array([t.ticket_id for t in tickets], pa.string()),
                "account_id": pa.array([t.account_id for t in tickets], pa.string()),
                "device_id": pa.array([t.device_id for t in tickets], pa.string()),
                "category": pa.array([t.category for t in tickets], pa.string()),
                "opened_at": _ts(config, [t.opened_step for t in tickets]),
                "responded_at": _ts(config, [t.responded_step for t in tickets]),
                "resolved_at": _ts(config, [t.resolved_step for t in tickets]),
                "failure_mode": pa.array([t.failure_mode for t in tickets], pa.string()),
                "failure_cause": pa.array([t.failure_cause for t in tickets], pa.string()),
            }
        ),
    )
    put("outcomes", pa.table(_records(outcomes)))
    return written
