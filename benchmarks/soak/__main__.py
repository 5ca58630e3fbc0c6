"""``python -m benchmarks.soak --minutes N --out DIR``: the backend under steady load and
injected faults; exits 1 when a check fails (report in DIR/report.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from benchmarks.soak.driver import SoakOptions, result_json, run_soak
from benchmarks.soak.report import write_report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="load duration")
    parser.add_argument("--out", type=Path, default=Path("artifacts/soak"))
    parser.add_argument("--devices", type=int, default=240)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated s per wall s")
    parser.add_argument("--wear-acceleration", type=float, default=20.0)
    parser.add_argument("--database-outage-s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per operator request
    options = SoakOptions(
        minutes=args.minutes,
        out=args.out,
        devices=args.devices,
        accounts=args.accounts,
        speed=args.speed,
        seed=args.seed,
        wear_acceleration=args.wear_acceleration,
        database_outage_s=args.database_outage_s,
    )
    result = run_soak(options)
    report = write_report(result, options.out)
    (options.out / "result.json").write_text(result_json(result))
    for check in result.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    print(f"report: {report}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
