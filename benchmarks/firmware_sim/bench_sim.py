"""Simulator benchmarks.

1. ``generate``: ``sim generate`` for N devices × D days at one reading per minute
   (default 1,000 × 365), with the Parquet encoder inline (one thread) or on a writer
   thread; wall and CPU time, readings/s, bytes written.
2. ``baseline``: the naive way for comparison, a per-reading Python loop (scalar physics,
   ``random.gauss`` noise, rows appended to lists, one Parquet write), timed on a sample
   and reported as readings/s.
3. ``live``: readings generated and handed to the SDK per second, N devices, speed 0
   (as fast as the SDK takes them), against a private mosquitto, the process pinned to one
   CPU (the SDK's own threads included); ``record`` per reading and ``record_many`` per
   device-hour side by side.

Run: ``python -m benchmarks.firmware_sim.bench_sim [generate|baseline|live|all] [options]``.
Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from firmware_sim import SimConfig, generate


def _pin_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_generate(
    devices: int, days: int, writer_thread: bool, out: Path | None
) -> dict[str, Any]:
    target = out or Path(tempfile.mkdtemp(prefix="fsim-bench-"))
    config = SimConfig(devices=devices, days=days, seed=1)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = generate(config, target, overwrite=True, writer_thread=writer_thread)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    size = _dir_bytes(target / "telemetry")
    if out is None:
        shutil.rmtree(target)
    return {
        "bench": "generate",
        "devices": devices,
        "days": days,
        "writer_thread": writer_thread,
        "readings": result.readings,
        "values": result.values,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "readings_per_s": round(result.readings / wall),
        "telemetry_bytes": size,
        "bytes_per_reading": round(size / result.readings, 2),
    }


def bench_baseline(devices: int, minutes: int) -> dict[str, Any]:
    """Per-reading Python: the same 11 channels, scalar maths, noise, rounding."""
    rnd = random.Random(1)
    rows: dict[str, list[Any]] = {"ts": [], "device_id": []}
    names = [
        "speed_rpm",
        "flow_m3h",
        "discharge_pressure_bar",
        "strainer_dp_bar",
        "motor_current_a",
        "power_kw",
        "vibration_rms_mm_s",
        "vibration_peak_g",
        "bearing_temp_c",
        "winding_temp_c",
        "ambient_temp_c",
    ]
    for name in names:
        rows[name] = []
    t0 = time.perf_counter()
    for d in range(devices):
        bearing = winding = 0.3
        wear = rnd.random() * 0.3
        for m in range(minutes):
            running = 1.0 if (m // 60) % 24 < 16 else 0.0
            load = 0.6 + 0.1 * math.sin(m / 90.0)
            s = (0.55 + 0.45 * load) * running
            amb = 15.0 + 5.0 * math.cos(2 * math.pi * (m / 1440.0 - 0.6))
            flow = 80.0 * s
            head = 6.0 * s * s
            power = flow * head / 36.0 / 0.7 + 2.0 * s * (1 + 4 * wear * wear)
            current = power * 1.68 + 10.0 * running
            vib = (0.3 * running + 0.7 * s * s) * 1.6 * (1 + 5 * wear**1.5) + 0.1
            peak = (0.3 * running + 0.7 * s * s) * 0.8 * (1 + 6 * math.sqrt(wear)) + 0.05
            bearing += 0.033 * ((0.35 * running + 0.65 * s) * (1 + 2.2 * wear**1.5) - bearing)
            winding += 0.054 * ((current / 60.0) ** 2 - winding)
            true = [
                s * 2950.0,
                flow,
                head + 1.0,
                0.08 * (flow / 80.0) ** 2,
                current,
                power,
                vib,
                peak,
                amb + 28.0 * bearing,
                amb + 50.0 * winding,
                amb,
            ]
            rows["ts"].append(1_735_689_600_000 + m * 60_000)
            rows["device_id"].append(f"cp-{d:06d}")
            for name, value in zip(names, true, strict=True):
                rows[name].append(round(value + rnd.gauss(0.0, 0.05 * abs(value) + 0.01), 2))
    generated = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(pa.table(rows), Path(tmp) / "naive.parquet")
    total = time.perf_counter() - t0
    n = devices * minutes
    return {
        "bench": "baseline_per_reading_python",
        "readings": n,
        "generate_s": round(generated, 3),
        "total_s": round(total, 3),
        "readings_per_s": round(n / total),
    }


def bench_live(devices: int, hours: float, chunk_steps: int) -> dict[str, Any]:
    from firmware_sim.live import LiveOptions, run_live
    from fleetcare.embedded.mosquitto import MosquittoBroker

    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            options = LiveOptions(
                broker_urls=(broker.url,),
                queue_dir=Path(tmp) / "q",
                truth_dir=Path(tmp) / "gt",
                topic_root="bench",
                speed=0.0,
                duration_s=hours * 3600,
                real_start=False,
                chunk_steps=chunk_steps,
                flush_timeout_s=300,
                usage=False,
            )
            config = SimConfig(devices=devices, days=max(1, math.ceil(hours / 24)), seed=1)
            t0, c0 = time.perf_counter(), time.process_time()
            report = run_live(config, options)
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            broker.kill()
    return {
        "bench": "live_handed_to_sdk",
        "devices": devices,
        "sim_hours": hours,
        "chunk_steps": chunk_steps,
        "api": "record" if chunk_steps == 1 else "record_many",
        "readings": report.readings,
        "handover_wall_s": round(report.wall_s, 3),
        "readings_per_s": round(report.readings / report.wall_s),
        "total_with_setup_flush_truth_s": round(total, 2),
        "process_cpu_s_total": round(cpu, 2),
        "readings_per_cpu_s_total": round(report.readings / cpu),
        "undelivered_after_flush": report.undelivered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="?", default="all", choices=("generate", "baseline", "live", "all")
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=None, help="keep the generated files here")
    parser.add_argument(
        "--threads",
        choices=("both", "on", "off"),
        default="both",
        help="writer thread for generate",
    )
    parser.add_argument("--live-devices", type=int, default=100)
    parser.add_argument("--live-hours", type=float, default=12.0)
    parser.add_argument("--pin", action="store_true", help="pin generate to one CPU as well")
    args = parser.parse_args()
    if args.what in ("baseline", "all"):
        print(json.dumps(bench_baseline(20, 1440)), flush=True)
    if args.what in ("generate", "all"):
        if args.pin:
            _pin_one_cpu()
        modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.threads]
        for threaded in modes:
            print(
                json.dumps(bench_generate(args.devices, args.days, threaded, args.out)), flush=True
            )
    if args.what in ("live", "all"):
        cpu = _pin_one_cpu()
        for chunk in (1, 60):
            row = bench_live(args.live_devices, args.live_hours, chunk)
            row["pinned_cpu"] = cpu
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
