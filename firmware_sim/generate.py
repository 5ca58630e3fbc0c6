"""Offline mode: simulate a fleet and write its history straight to files.

Layout of the output directory (see ``docs/simulator.md`` for every column)::

    manifest.json                         config, files, row counts, schema version
    telemetry/<machine_type>/<YYYY-MM>.parquet   wide readings, one row group per day
    usage/usage.parquet                   daily usage per device
    events/events.parquet                 trips, restarts, maintenance mode (device-reported)
    exports/*.csv|json                    CRM, ERP, service desk, device registry (defective)
    ground_truth/*.parquet|csv|json       what really happened (never sent over the wire)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from firmware_sim.config import SCHEMA_VERSION, SimConfig
from firmware_sim.engagement import Engagement, simulate_engagement
from firmware_sim.engine import DayBlock, Simulation
from firmware_sim.errors import OutputExistsError
from firmware_sim.exports import build_exports, write_exports
from firmware_sim.fleet import Fleet, build_fleet
from firmware_sim.machines import MACHINE_TYPES
from firmware_sim.outcomes import renewal_outcomes
from firmware_sim.schema import EVENTS_SCHEMA, usage_schema
from firmware_sim.seeds import Stream, rng
from firmware_sim.telemetry_files import Compression, TelemetryFiles, TelemetrySink
from firmware_sim.tickets import all_tickets
from firmware_sim.truth_files import write_ground_truth
from firmware_sim.usage import UsageMeter, usage_rng

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerateResult:
    out_dir: Path
    readings: int
    values: int
    files: int
    failures: int
    manifest: dict[str, object]


def prepare_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(str(out_dir))
        for sub in ("telemetry", "usage", "events", "exports", "ground_truth", "manifest.json"):
            target = out_dir / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


class UsageRecorder:
    """Collects daily usage of every machine type (small: one row per device-day)."""

    def __init__(self, config: SimConfig, fleet: Fleet, sim: Simulation, engagement: Engagement):
        self.config = config
        self.engagement = engagement
        self.meters = {}
        for t in sim.types:
            accounts = np.array([fleet.account(d.account_id).index for d in t.devices])
            self.meters[t.spec.name] = UsageMeter.plan(
                rng(config.seed, Stream.USAGE, t.type_index), accounts, engagement.on(-1)
            )
        self.columns: dict[str, list[np.ndarray]] = {}
        self.dates: list[np.ndarray] = []
        self.ids: list[str] = []

    def add(self, block: DayBlock) -> dict[str, np.ndarray]:
        meter = self.meters[block.machine_type]
        g = usage_rng(self.config.seed, MACHINE_TYPES.index(block.machine_type), block.day)
        row = meter.day(
            block.running,
            block.load,
            block.values["power_kw"],
            self.config.step_h,
            self.engagement.on(block.day),
            g,
        )
        day = np.datetime64(self.config.start + timedelta(days=block.day), "D")
        self.dates.append(np.full(len(block.device_ids), day))
        self.ids += block.device_ids
        for k, v in row.items():
            self.columns.setdefault(k, []).append(v)
        return row

    def table(self) -> pa.Table:
        schema = usage_schema()
        data: dict[str, object] = {
            "date": pa.array(np.concatenate(self.dates) if self.dates else [], pa.date32()),
            "device_id": pa.array(self.ids, pa.string()),
        }
        for f in schema:
            if f.name not in data:
                data[f.name] = pa.array(
                    np.concatenate(self.columns[f.name]) if self.dates else [], f.type
                )
        return pa.table(data, schema=schema)


def generate(
    config: SimConfig,
    out_dir: Path,
    truth_dir: Path | None = None,
    overwrite: bool = False,
    compression: Compression = "none",
    writer_thread: bool = True,
    progress: ProgressFn | None = None,
) -> GenerateResult:
    """Simulate ``config`` and write everything under ``out_dir``."""
    prepare_dir(out_dir, overwrite)
    truth = truth_dir if truth_dir is not None else out_dir / "ground_truth"
    fleet = build_fleet(config)
    engagement = simulate_engagement(config.seed, config.n_accounts, config.days)
    sim = Simulation(config, fleet, engagement)
    usage = UsageRecorder(config, fleet, sim, engagement)
    sink = TelemetrySink(
        TelemetryFiles(out_dir, config.start, config.interval_s, compression), writer_thread
    )
    readings = values = 0
    try:
        for day, blocks in enumerate(sim.days()):
            for block in blocks:
                usage.add(block)
                readings += block.running.size
                values += block.running.size * len(block.values)
                sink.put(block)
            if progress is not None:
                progress(day + 1, config.days)
    finally:
        files = sink.close()
    (out_dir / "usage").mkdir(exist_ok=True)
    pq.write_table(usage.table(), out_dir / "usage" / "usage.parquet", compression="zstd")
    _write_events(sim, config, out_dir / "events" / "events.parquet")
    tickets = all_tickets(config, fleet, engagement, sim.log)
    outcomes = renewal_outcomes(config, fleet, engagement, sim.log, tickets)
    exports = build_exports(config, fleet, tickets)
    write_exports(exports, out_dir / "exports", truth)
    write_ground_truth(truth, config, fleet, engagement, sim, tickets, outcomes)
    manifest: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "generator": "firmware_sim",
        "config": config.model_dump(mode="json"),
        "start": config.start_at.isoformat(),
        "end": config.end_at.isoformat(),
        "interval_s": config.interval_s,
        "layout": "wide: one row per (device_id, ts); one float32 column per metric; "
        "one file per machine type and month; one row group per day",
        "telemetry_files": [
            {
                "path": str(f.path.relative_to(out_dir)),
                "machine_type": f.machine_type,
                "rows": f.rows,
            }
            for f in files
        ],
        "counts": {
            "devices": len(fleet.devices),
            "accounts": len(fleet.accounts),
            "readings": readings,
            "values": values,
            "failures": len(sim.log.failures),
            "wear_failures": sum(f.cause == "wear" for f in sim.log.failures),
            "random_failures": sum(f.cause == "random" for f in sim.log.failures),
            "maintenance_visits": len(sim.log.maintenance),
            "tickets": len(tickets),
            "renewals": sum(o.outcome != "pending" for o in outcomes),
        },
        "ground_truth_dir": str(truth.relative_to(out_dir))
        if truth.is_relative_to(out_dir)
        else str(truth),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return GenerateResult(out_dir, readings, values, len(files), len(sim.log.failures), manifest)


def _write_events(sim: Simulation, config: SimConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    horizon = config.days * config.steps_per_day
    events = sorted(
        (e for e in sim.log.device_events if e.step < horizon),
        key=lambda e: (e.step, e.device_id, e.kind),
    )
    start_ms = int((config.start - date(1970, 1, 1)).total_seconds()) * 1000
    ts = np.array([e.step for e in events], dtype=np.int64) * config.interval_s * 1000 + start_ms
    table = pa.table(
        {
            "ts": pa.array(ts, type=EVENTS_SCHEMA.field("ts").type),
            "device_id": [e.device_id for e in events],
            "kind": [e.kind for e in events],
            "code": [e.code for e in events],
        },
        schema=EVENTS_SCHEMA,
    )
    pq.write_table(table, path, compression="zstd")
