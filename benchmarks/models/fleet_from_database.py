"""A fleet model trained on the fleet's database against the same model trained on files.

    .venv/bin/python -m benchmarks.models.fleet_from_database [--devices 300] [--days 365]
        [--interval-s 3600] [--server postgresql://postgres@127.0.0.1:5432/postgres]

A simulated fleet (seed 1) is written into a database of its own through ingest's writer
(``backend.ingest.history_load``, as the demo writes its history), and its failures are
recorded as the care loop and a field-service system would: every other wear failure as
a ticket resolved ``failure_confirmed`` after a trip event, the others and the random
failures in a repair log (each with its trip event), and every visit that removed
advanced wear as a ``failure_prevented`` ticket. Then, per machine type, side by side:

* **files** (the baseline): daily means and outcomes read from the generated Parquet
  and ground truth (``models.fleet.training.load_history``);
* **database**: ``backend.scoring.training_history.read_training_history`` over the same
  days, learning the machine type's wear modes (``--modes`` of the CLI).

It reports the time to read each, checks that they hold the same numbers (daily means to
float32 precision, outcomes within the range exactly), trains both with the default
``FleetConfig`` on the same device order and compares what the two models chose (alert
thresholds, out-of-fold precision and recall per mode). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow.parquet as pq

from benchmarks.scratch_database import SHARED_SERVER, scratch_database
from models.fleet.labels import CENSOR_DEGRADATION
from models.fleet.repair_log import RepairRecord

START = date(2025, 1, 1)


def record_outcomes(
    conn: psycopg.Connection[Any], truth_dir: Path, device_ids: dict[str, int]
) -> list[RepairRecord]:
    """Record a generated history's failures as the care loop and field service would.

    Every failure of a device in ``device_ids`` (external id -> database id) gets a trip
    event; every other wear failure a ticket resolved ``failure_confirmed`` (opened 5 days
    before it, resolved when the device was back); the rest, random failures included,
    are returned as repair-log records; every visit that removed advanced wear becomes a
    ``failure_prevented`` ticket resolved at the visit. ``conn`` must be in autocommit mode
    or committed by the caller.
    """
    from backend.storage.migrator import dialect_of

    failures = [
        f
        for f in pq.read_table(truth_dir / "failures.parquet").to_pylist()
        if str(f["device_id"]) in device_ids
    ]
    if failures:
        times = [f["failed_at"] for f in failures]
        dialect_of(conn).ensure_partitions(conn, "device_events", min(times), max(times))
    repairs: list[RepairRecord] = []
    events, confirmed, prevented = [], [], []
    for n, f in enumerate(failures):
        device = device_ids[str(f["device_id"])]
        events.append((f["failed_at"], device, n + 1, f["trip_code"]))
        if f["cause"] == "wear" and n % 2 == 0:
            confirmed.append(
                (f"fc{n}", device, f["mode"], f["failed_at"] - timedelta(days=5), f["resolved_at"])
            )
        else:
            repairs.append(
                RepairRecord(
                    device_id=str(f["device_id"]),
                    failed_at=f["failed_at"],
                    mode=str(f["mode"]),
                    repaired_at=f["resolved_at"],
                )
            )
    for n, visit in enumerate(pq.read_table(truth_dir / "maintenance.parquet").to_pylist()):
        device_id = device_ids.get(str(visit["device_id"]))
        if device_id is None:
            continue
        for change in json.loads(visit["changes"]):
            if change["action"] in ("replaced", "reduced") and (
                change["d_before"] >= CENSOR_DEGRADATION
            ):
                at = visit["started_at"]
                prevented.append((f"fp{n}", device_id, change["mode"], at - timedelta(days=2), at))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO device_events (time, device_id, seq, kind, severity, code) "
            "VALUES (%s, %s, %s, 'trip', 'error', %s)",
            events,
        )
        cur.executemany(
            "INSERT INTO tickets (dedup_key, device_id, failure_mode, failure_risk, priority,"
            " status, outcome, created_at, resolved_at) "
            "VALUES (%s, %s, %s, %s, %s, 'closed', %s, %s, %s)",
            [(k, d, m, 0.9, 2, "failure_confirmed", c, r) for k, d, m, c, r in confirmed]
            + [(k, d, m, 0.5, 3, "failure_prevented", c, r) for k, d, m, c, r in prevented],
        )
    return repairs


def _sorted(daily: Any, outcomes: Any) -> tuple[Any, Any]:
    """The files' daily means and outcomes in device-name order (the database's order)."""
    from dataclasses import replace

    order = sorted(range(len(daily.device_ids)), key=lambda k: daily.device_ids[k])
    position = {old: new for new, old in enumerate(order)}
    daily = replace(
        daily, device_ids=tuple(daily.device_ids[k] for k in order), means=daily.means[order]
    )
    outcomes = replace(
        outcomes,
        to_failure=outcomes.to_failure[order],
        to_repair=outcomes.to_repair[order],
        down=outcomes.down[order],
        remaining=outcomes.remaining[order],
        failures=tuple(sorted((position[i], at, mode) for i, at, mode in outcomes.failures)),
    )
    return daily, outcomes


def _differing(ours: Any, theirs: Any) -> dict[str, object]:
    """What differs between two outcomes within the range: per array, the device-days (and
    modes) that do, with the first few; an empty dict when nothing does.

    Days to a failure or visit after the range's end are read as "none": the database is
    read over the range only, while the generated ground truth can list a visit that
    starts a few days after it (no sample sees it: the last 14 days are unknown anyway).
    """
    found: dict[str, object] = {}
    if ours.modes != theirs.modes:
        found["modes"] = [ours.modes, theirs.modes]
    for name in ("to_failure", "to_repair", "down", "remaining"):
        a, b = getattr(ours, name), getattr(theirs, name)
        if a.shape != b.shape:
            found[name] = f"shapes {a.shape} and {b.shape}"
            continue
        if name in ("to_failure", "to_repair"):
            inside = ours.remaining[:, :, None]
            a, b = np.where(a <= inside, a, np.inf), np.where(b <= inside, b, np.inf)
        cells = np.argwhere(a != b)
        if cells.size:
            found[name] = {"cells": int(cells.shape[0]), "first": cells[:3].tolist()}
    return found


def _quality(model: Any) -> dict[str, tuple[float | None, float | None, float | None]]:
    return {
        q.mode: (model.thresholds.get(q.mode), q.precision, q.recall)
        for q in model.holdout
        if q.mode in model.thresholds
    }


def main() -> None:
    from backend.ingest.demo_fleet import SimFleetPlan, register_sim_fleet
    from backend.ingest.history_load import load_history
    from backend.scoring.training_history import read_training_history
    from backend.storage.migrator import apply_migrations
    from firmware_sim import generate
    from firmware_sim.history import history_readings
    from firmware_sim.machines import machine_spec
    from models.fleet.training import FleetConfig, train_fleet_model
    from models.fleet.training import load_history as load_files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--interval-s", type=int, default=3600)
    parser.add_argument(
        "--server",
        default=SHARED_SERVER,
        help="PostgreSQL server URL (a database of its own is made there)",
    )
    args = parser.parse_args()

    plan = SimFleetPlan(devices=args.devices, accounts=max(1, args.devices // 8), seed=1,
                        interval_s=args.interval_s)  # fmt: skip
    config = plan.config().model_copy(update={"days": args.days, "start": START})
    start = datetime(START.year, START.month, START.day, tzinfo=UTC)
    end = start + timedelta(days=args.days)
    with (
        scratch_database(args.server, "fleetcare_bench_train") as url,
        tempfile.TemporaryDirectory(prefix="fleetcare-bench-train-") as folder,
    ):
        history = Path(folder) / "history"
        t0 = time.perf_counter()
        generate(config, history)
        print(f"generated {args.devices} devices x {args.days} days at {args.interval_s} s "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        apply_migrations(url, dialect="postgres")
        register_sim_fleet(url, plan)
        t0 = time.perf_counter()
        steps = args.days * config.steps_per_day
        load = load_history(url, "bench", history_readings(config, steps), oldest=start)
        print(f"stored {load.readings:,} readings through ingest's writer (rollups "
              f"refreshed) in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        with psycopg.connect(url, autocommit=True) as conn:
            ids = {str(e): int(i) for e, i in conn.execute("SELECT external_id, id FROM devices")}
            repairs = record_outcomes(conn, history / "ground_truth", ids)
        print(f"recorded outcomes: {len(repairs)} repair-log rows", flush=True)
        rows = []
        for machine_type in ("centrifugal_pump", "air_compressor"):
            modes = machine_spec(machine_type).wear_mode_names
            t0 = time.perf_counter()
            files = _sorted(*load_files(history, machine_type))
            files_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with psycopg.connect(url) as conn:
                db = read_training_history(conn, machine_type, START, end.date(),
                                           repairs=repairs, modes=modes)  # fmt: skip
            db_s = time.perf_counter() - t0
            same_days = bool(
                np.allclose(db.daily.means, files[0].means, rtol=1e-5, equal_nan=True)
                and np.array_equal(np.isnan(db.daily.means), np.isnan(files[0].means))
                and db.daily.metrics == files[0].metrics
            )
            differing = _differing(db.outcomes, files[1])
            same_outcomes = not differing
            t0 = time.perf_counter()
            from_files = train_fleet_model(files[0], files[1], FleetConfig())
            files_train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            from_db = train_fleet_model(db.daily, db.outcomes, FleetConfig())
            db_train_s = time.perf_counter() - t0
            rows.append({
                "machine_type": machine_type,
                "devices": len(db.daily.device_ids),
                "device_days_with_readings": db.daily.device_days_with_readings,
                "read_files_s": round(files_s, 2),
                "read_database_s": round(db_s, 2),
                "same_daily_means": same_days,
                "same_outcomes": same_outcomes,
                "differing_outcomes": differing,
                "sources": {
                    "confirmed_tickets": db.sources.confirmed_tickets,
                    "repair_log": db.sources.repair_log,
                    "prevented_tickets": db.sources.prevented_tickets,
                    "unattributed": db.sources.unattributed,
                },
                "train_files_s": round(files_train_s, 1),
                "train_database_s": round(db_train_s, 1),
                "same_thresholds_and_holdout": _quality(from_files) == _quality(from_db),
                "holdout_database": _quality(from_db),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    print("\n| machine type | devices | read: files | read: database | ratio | same means | "
          "same outcomes | same thresholds and out-of-fold figures |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|---|---|")
    for r in rows:
        print(f"| {r['machine_type']} | {r['devices']} | {r['read_files_s']} s | "
              f"{r['read_database_s']} s | {r['read_database_s'] / r['read_files_s']:.2f}x | "
              f"{r['same_daily_means']} | {r['same_outcomes']} | "
              f"{r['same_thresholds_and_holdout']} |")  # fmt: skip


if __name__ == "__main__":
    main()
