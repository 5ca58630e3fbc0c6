"""Scoring 10,000 devices: the worker's batched pass vs a naive per-device loop.

``python -m benchmarks.scoring.bench_scoring [--devices 10000] [--naive-devices 1000]
[--database-url URL]``. Creates a database of its own on the server (dropped at the end),
registers ``--devices`` pumps whose daily rollups (28 days x 11 metrics) come from a
generated fleet, trains a small fleet model on that fleet and makes it the champion, then:

* **worker**: one ``ScoringWorker.run_once`` (due-device query, windows by binary COPY
  from ``telemetry_daily``, features, onnxruntime on one thread, occlusion contributions,
  predictions by COPY), wall time and the process's CPU time;
* **naive**: per device, the newest reading, its rollup rows through
  ``rollup_queries.rollup``, a batch of one through the same model, one ``INSERT`` and
  commit; measured on ``--naive-devices`` devices and reported per device.

Prints one JSON line per measurement and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psycopg

from benchmarks.scratch_database import SHARED_SERVER, scratch_database

WINDOW_DAYS = 28


def _model(folder: Path) -> tuple[Any, Any]:
    from firmware_sim import SimConfig, generate
    from models.fleet.dataset import build_samples
    from models.fleet.export import export_and_register, history_sha256
    from models.fleet.training import FleetConfig, load_history, train_fleet_model
    from models.registry import FileRegistry

    sim = SimConfig(devices=80, days=150, interval_s=3600, seed=11, pump_share=1.0,
                    wear_acceleration=4.0)  # fmt: skip
    generate(sim, folder / "history")
    daily, outcomes = load_history(folder / "history", "centrifugal_pump")
    config = FleetConfig(window_days=WINDOW_DAYS, max_iter=150)
    model = train_fleet_model(daily, outcomes, config)
    samples = build_samples(daily, outcomes, WINDOW_DAYS, 14, 60)
    registry = FileRegistry(folder / "registry")
    entry = export_and_register(
        model, registry, "benchmark fleet", history_sha256(folder / "history", "centrifugal_pump"),
        samples.features[::50],
    )  # fmt: skip
    registry.promote(entry.name, entry.version)
    return registry, daily


def _load(url: str, daily: Any, devices: int, end: datetime) -> None:
    from backend.storage.catalogue import MetricSpec, ensure_device_model
    from backend.storage.migrator import apply_migrations, dialect_of

    apply_migrations(url, dialect="postgres")
    rng = np.random.default_rng(0)
    with psycopg.connect(url, autocommit=True) as conn:
        model_id = ensure_device_model(
            conn, "centrifugal_pump", "centrifugal_pump", [MetricSpec(m) for m in daily.metrics]
        )
        conn.execute(
            "INSERT INTO devices (external_id, model_id, status) "
            "SELECT 'bench-' || g, %s, 'active' FROM generate_series(1, %s) g",
            (model_id, devices),
        )
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM devices ORDER BY id")]
        dialect = dialect_of(conn)
        dialect.ensure_partitions(conn, "telemetry", end - timedelta(days=2), end)
        first_day = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=WINDOW_DAYS - 1
        )
        with conn.cursor() as cur:
            with cur.copy("COPY telemetry_daily (bucket, device_id, position, n, total, min, max) "
                          "FROM STDIN") as copy:  # fmt: skip
                for device in ids:
                    source = int(rng.integers(len(daily.device_ids)))
                    offset = int(rng.integers(0, daily.days - WINDOW_DAYS))
                    window = daily.means[source, offset : offset + WINDOW_DAYS]
                    for d in range(WINDOW_DAYS):
                        bucket = first_day + timedelta(days=d)
                        for j, value in enumerate(window[d]):
                            if np.isfinite(value):
                                copy.write_row((bucket, device, j + 1, 24, float(value) * 24,
                                                float(value), float(value)))  # fmt: skip
            with cur.copy("COPY telemetry (time, device_id, seq, vals) FROM STDIN") as copy:
                for device in ids:
                    copy.write_row((end - timedelta(minutes=5), device, 1, [1.0] * 11))
        conn.execute("ANALYZE")


def backend_cpu_s(conn: psycopg.Connection[Any]) -> float:
    """CPU seconds (user + system) the connection's server process has used so far."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    fields = Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _naive(url: str, registry: Any, count: int, now: datetime) -> tuple[float, float]:
    """Per device: newest reading, rollup rows, score a batch of one, INSERT + commit."""
    from backend.storage.rollup_queries import rollup
    from models.fleet.scorer import FleetScorer

    entry = registry.champion("fleet-centrifugal_pump")
    scorer = FleetScorer(entry.directory)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        metric_of = {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM metrics")}
        server0 = backend_cpu_s(conn)
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM devices ORDER BY id LIMIT %s",
                                                 (count,))]  # fmt: skip
        for device in ids:
            row = conn.execute(
                "SELECT max(time) FROM telemetry WHERE device_id = %s", (device,)
            ).fetchone()
            assert row is not None
            newest: datetime = row[0]
            last_day = newest.replace(hour=0, minute=0, second=0, microsecond=0)
            buckets = rollup(conn, "daily", last_day - timedelta(days=WINDOW_DAYS - 1),
                             last_day + timedelta(days=1), [device])  # fmt: skip
            window = np.full((1, WINDOW_DAYS, len(scorer.metrics)), np.nan, dtype=np.float32)
            for b in buckets:
                day = WINDOW_DAYS - 1 - (last_day - b.bucket).days
                window[0, day, scorer.metrics.index(metric_of[b.metric_id])] = b.avg
            (score,) = scorer.score(window)
            conn.execute(
                "INSERT INTO predictions (predicted_at, device_id, window_start, window_end, "
                "horizon_hours, failure_risk, rul_hours, failure_mode, mode_probabilities, "
                "contributions, anomaly_score) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (now, device, last_day - timedelta(days=WINDOW_DAYS - 1), newest, 336, score.risk,
                 score.rul_hours, score.failure_mode, json.dumps(score.mode_probabilities),
                 json.dumps([c.model_dump() for c in score.contributions]), score.anomaly_score),
            )  # fmt: skip
            conn.commit()
        server = backend_cpu_s(conn) - server0
    return time.perf_counter() - started, server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--naive-devices", type=int, default=1000)
    parser.add_argument(
        "--database-url", default=SHARED_SERVER, help="server to create the database on"
    )
    args = parser.parse_args(argv)
    from backend.scoring.worker import ScoringWorker

    now = datetime.now(UTC).replace(microsecond=0)
    with (
        scratch_database(args.database_url, "fc_bench_scoring") as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        registry, daily = _model(Path(folder))
        _load(url, daily, args.devices, now - timedelta(days=1))  # yesterday: a completed day
        worker = ScoringWorker(url, registry, batch_size=args.devices)
        worker.champions()  # load the model before timing
        with psycopg.connect(url, autocommit=True) as conn:
            server0 = backend_cpu_s(conn)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = worker.run_once(now=now, conn=conn)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            server = backend_cpu_s(conn) - server0
        assert report.scored == args.devices, report
        print(
            json.dumps(
                {"steps_s": {k: round(v, 3) for m in report.models for k, v in m.steps.items()}}
            )
        )
        batched = {"bench": "worker", "devices": report.scored, "wall_s": round(wall, 3),
                   "cpu_s": round(cpu, 3), "db_cpu_s": round(server, 3),
                   "load_1min": os.getloadavg()[0],
                   "devices_per_s": round(report.scored / wall)}  # fmt: skip
        print(json.dumps(batched), flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM predictions")
        n = min(args.naive_devices, args.devices)
        cpu0 = time.process_time()
        naive_wall, naive_server = _naive(url, registry, n, now)
        naive_cpu = time.process_time() - cpu0
        naive = {"bench": "naive", "devices": n, "wall_s": round(naive_wall, 3),
                 "cpu_s": round(naive_cpu, 3), "db_cpu_s": round(naive_server, 3),
                 "load_1min": os.getloadavg()[0],
                 "devices_per_s": round(n / naive_wall)}  # fmt: skip
        print(json.dumps(naive))
    total, naive_total = cpu + server, naive_cpu + naive_server
    per_worker, per_naive = total / args.devices, naive_total / n
    print(
        "\n| path | devices | wall | CPU scorer | CPU database | CPU total | CPU per device |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| worker, one pass | {args.devices:,} | {wall:.2f} s | {cpu:.2f} s | {server:.2f} s | "
        f"{total:.2f} s | {per_worker * 1e3:.3f} ms |\n"
        f"| naive, per device | {n:,} | {naive_wall:.2f} s | {naive_cpu:.2f} s | "
        f"{naive_server:.2f} s | {naive_total:.2f} s | {per_naive * 1e3:.3f} ms "
        f"({per_naive / per_worker:.1f}x the worker's) |"
    )


if __name__ == "__main__":
    main()
