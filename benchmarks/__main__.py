"""Run every fleetcare benchmark in sequence: ``python -m benchmarks [NAME ...]``.

Each benchmark is a module with its own options (see ``python -m benchmarks.<area>.<module>
--help``); this runner calls each with its defaults, one after the other so that they do not
compete for the CPU, and prints their Markdown reports. The figures in docs/benchmarks.md
come from these commands.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS: dict[str, list[str]] = {
    "storage-layout": ["benchmarks.storage.bench_layout"],
    "device-sdk": ["benchmarks.device_sdk.bench_sdk"],
    "firmware-sim": ["benchmarks.firmware_sim.bench_sim"],
    "ingest": ["benchmarks.ingest.bench_ingest"],
    "ingest-decode": ["benchmarks.ingest.bench_decode"],
    "models-onnx": ["benchmarks.models.onnx_vs_torch"],
    "models-sim": ["benchmarks.models.sim_fleet"],
    "models-fleet-database": ["benchmarks.models.fleet_from_database"],
    "gateway": ["benchmarks.gateway.bench_gateway"],
    "care": ["benchmarks.care.bench_care"],
    "downlink": ["benchmarks.downlink.bench_downlink"],
    "customers": ["benchmarks.customers.bench_customers"],
    "dashboards": ["benchmarks.dashboards.bench_panels"],
    "scoring": ["benchmarks.scoring.bench_scoring"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    failed: list[str] = []
    for name in names:
        module, *args = BENCHMARKS[name]
        print(f"\n## {name}: python -m {module} {' '.join(args)}".rstrip(), flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", module, *args], check=False)
        print(f"\n({name}: exit {result.returncode} after {time.monotonic() - started:.0f} s)")
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
