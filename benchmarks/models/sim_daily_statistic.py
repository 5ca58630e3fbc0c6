"""Which daily statistic of a signal shows early wear: the mean, or an upper quantile?

    .venv/bin/python -m benchmarks.models.sim_daily_statistic --history DIR \
        [--machine air_compressor --metric inlet_filter_dp_mbar --mode inlet_filter_clog]

``DIR`` is a ``fleetcare sim generate`` output (e.g. the test fleet that
``fleetcare models benchmark sim --work W`` leaves in ``W/test-seed2``). For every
device-day with at least ``--min-readings`` running readings, each statistic of the
metric (the mean of the running readings, their 90th percentile, their maximum, which
the daily rollups keep, and the 90th percentile of all the day's readings) is taken
relative to
the device's own baseline: the median of that statistic over its previous 14 such days.
The hidden degradation of the mode (ground truth) sorts the days: *clean* days
(degradation < 0.03) against bands of early wear. Reported per band: the share of its
days above the clean days' 99.5th percentile (what an alert rule with about 0.5 % false
days would catch) and the ROC AUC of band vs clean.

The fleet models read daily means (``models.fleet.daily``); this measures how much
earlier an upper quantile shows the wear (docs/benchmarks/models_sim.md weighs it against
the alerts it would buy: 0.6 days of filter-clog lead, not adopted).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from models.fleet.features import RUNNING_RPM

CLEAN_BELOW = 0.03
BANDS = ((0.08, 0.12), (0.13, 0.17), (0.18, 0.22), (0.28, 0.32))
BASELINE_DAYS = 14
STATISTICS = ("mean", "p90", "max", "p90_all")


def daily_statistics(history: Path, machine: str, metric: str, min_readings: int) -> pd.DataFrame:
    """``device_id, date, mean, p90, max, readings`` of ``metric`` over each day's running
    readings, and ``p90_all``: the 90th percentile of all the day's readings, standstill
    included (what a daily rollup could keep per metric without knowing the running state)."""
    files = sorted((history / "telemetry" / machine).glob("*.parquet"))
    if not files:
        raise SystemExit(f"{history}: no telemetry of {machine}")
    parts = []
    for file in files:
        table = pq.read_table(file, columns=["ts", "device_id", "speed_rpm", metric]).to_pandas()
        day = table["ts"].dt.tz_localize(None) if table["ts"].dt.tz else table["ts"]
        table = table.assign(date=day.dt.floor("D"))
        running = table[table["speed_rpm"] > RUNNING_RPM]
        groups = running.groupby(["device_id", "date"])[metric]
        every_reading = table.groupby(["device_id", "date"])[metric]
        parts.append(
            pd.DataFrame(
                {
                    "mean": groups.mean(),
                    "p90": groups.quantile(0.9),
                    "max": groups.max(),
                    "readings": groups.size(),
                }
            ).join(every_reading.quantile(0.9).rename("p90_all"), how="left")
        )
    days = pd.concat(parts).reset_index()
    return days[days["readings"] >= min_readings]


def with_degradation(days: pd.DataFrame, history: Path, mode: str) -> pd.DataFrame:
    truth = pq.read_table(history / "ground_truth" / "degradation_daily.parquet").to_pandas()
    truth = truth[truth["mode"] == mode][["device_id", "date", "degradation"]]
    truth = truth.assign(date=pd.to_datetime(truth["date"]))
    merged = days.merge(truth, on=["device_id", "date"], how="inner")
    return merged.sort_values(["device_id", "date"])


def relative_to_baseline(days: pd.DataFrame) -> pd.DataFrame:
    out = days.copy()
    for statistic in STATISTICS:
        baseline = out.groupby("device_id")[statistic].transform(
            lambda s: s.shift(1).rolling(BASELINE_DAYS, min_periods=5).median()
        )
        out[statistic + "_rise"] = out[statistic] / baseline - 1.0
    return out


def roc_auc(negative: NDArray[np.float64], positive: NDArray[np.float64]) -> float:
    labels = np.concatenate([np.zeros(negative.size), np.ones(positive.size)])
    return float(roc_auc_score(labels, np.concatenate([negative, positive])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--machine", default="air_compressor")
    parser.add_argument("--metric", default="inlet_filter_dp_mbar")
    parser.add_argument("--mode", default="inlet_filter_clog")
    parser.add_argument("--min-readings", type=int, default=24)
    args = parser.parse_args()
    days = daily_statistics(args.history, args.machine, args.metric, args.min_readings)
    days = relative_to_baseline(with_degradation(days, args.history, args.mode))
    clean = days[days["degradation"] < CLEAN_BELOW]
    print(
        f"{args.machine} {args.metric} vs hidden {args.mode}: {len(days)} device-days, "
        f"{len(clean)} clean (degradation < {CLEAN_BELOW})"
    )
    print("| degradation | days | statistic | clean 99.5th pct | band median | above | AUC |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for low, high in BANDS:
        band = days[(days["degradation"] >= low) & (days["degradation"] < high)]
        for statistic in STATISTICS:
            column = statistic + "_rise"
            negative = clean[column].dropna().to_numpy(dtype=np.float64)
            positive = band[column].dropna().to_numpy(dtype=np.float64)
            if positive.size == 0 or negative.size == 0:
                continue
            limit = float(np.quantile(negative, 0.995))
            print(
                f"| [{low}, {high}) | {positive.size} | daily {statistic} | {limit:+.3f} | "
                f"{np.median(positive):+.3f} | {(positive > limit).mean():.2f} | "
                f"{roc_auc(negative, positive):.3f} |"
            )


if __name__ == "__main__":
    main()
