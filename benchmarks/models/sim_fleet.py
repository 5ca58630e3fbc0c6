"""Failure alerts on a simulated fleet, with the report: ``make bench`` runs this.

    .venv/bin/python -m benchmarks.models.sim_fleet [--devices 500] [--out artifacts/models-sim]
        [--train-devices 1500 --train-days 730] [--test-seed 2]

The same run as ``fleetcare models benchmark sim --devices 500`` (train on seed 1, judge
on seed 2, 365 days each), into a folder of its own with its own registry, then
``fleetcare models report --sim-json``: per-mode precision, recall and lead time, the
lead-time histogram and the mode each failure's first alert named. The fleets are kept in
the folder and reused by the next run of the same configuration.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from models.fleet.benchmark import SimBenchmarkConfig, pooled_line, run_sim_benchmark
from models.registry import FileRegistry
from models.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500, help="devices per fleet")
    parser.add_argument("--days", type=int, default=365, help="days of history per fleet")
    parser.add_argument("--train-devices", type=int, help="training fleet (default: --devices)")
    parser.add_argument("--train-days", type=int, help="training history (default: --days)")
    parser.add_argument("--test-seed", type=int, default=2, help="seed of the judged fleet")
    parser.add_argument("--out", type=Path, default=Path("artifacts/models-sim"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = run_sim_benchmark(
        SimBenchmarkConfig(
            devices=args.devices,
            days=args.days,
            test_seed=args.test_seed,
            train_devices=args.train_devices,
            train_days=args.train_days,
        ),
        args.out / "fleets",
        FileRegistry(args.out / "registry"),
        say=lambda line: print(line, flush=True),
    )
    result_path = args.out / "sim-benchmark.json"
    result.write(result_path)
    report = write_report(args.out / "report", None, None, result_path)
    print(f"\n{pooled_line(result)}, {time.perf_counter() - started:.0f} s\n")
    print(report.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
