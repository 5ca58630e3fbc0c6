"""Daily means per device and metric: the window the fleet models read.

A day's mean is the mean of that day's observed values (``total / n`` of the daily
rollup, ``telemetry_daily``); a day without any observed value is NaN, never 0. Training
computes the same aggregate from generated Parquet history, so a model sees the same
numbers in training and in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from models.errors import DataSetError

DAY_MS = 86_400_000


@dataclass(frozen=True)
class DailyMeans:
    """``means[device, day, metric]`` for one machine type (NaN: nothing observed)."""

    machine_type: str
    device_ids: tuple[str, ...]
    metrics: tuple[str, ...]
    start: date
    means: NDArray[np.float32]

    @property
    def days(self) -> int:
        return int(self.means.shape[1])

    @property
    def device_days_with_readings(self) -> int:
        """Device-days with at least one observed value."""
        return int(np.isfinite(self.means).any(axis=2).sum())


def _history_start(out_dir: Path) -> tuple[date, int]:
    import json

    manifest = out_dir / "manifest.json"
    if not manifest.is_file():
        raise DataSetError(str(out_dir), "not a generated history (no manifest.json)")
    config = json.loads(manifest.read_text(encoding="utf-8"))["config"]
    return date.fromisoformat(config["start"]), int(config["days"])


def read_daily_means(out_dir: Path, machine_type: str) -> DailyMeans:
    """Daily means of every device of ``machine_type`` in a ``fleetcare sim generate`` output.

    Raises:
        DataSetError: the directory holds no generated history or no such machine type.
    """
    start, days = _history_start(out_dir)
    files = sorted((out_dir / "telemetry" / machine_type).glob("*.parquet"))
    if not files:
        raise DataSetError(str(out_dir), f"no telemetry of {machine_type}")
    schema = pq.read_schema(files[0])
    metrics = tuple(f.name for f in schema if f.name not in ("ts", "device_id"))
    index: dict[str, int] = {}
    chunks: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]] = []
    start_ms = (start - date(1970, 1, 1)).days * DAY_MS
    for file in files:
        table = pq.read_table(file)
        ids = table.column("device_id").combine_chunks()
        if not isinstance(ids, pa.DictionaryArray):
            ids = pc.dictionary_encode(ids)
        local = [index.setdefault(str(v), len(index)) for v in ids.dictionary.to_pylist()]
        devices = np.asarray(local, dtype=np.int64)[ids.indices.to_numpy(zero_copy_only=False)]
        ms = table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()
        day = (ms - start_ms) // DAY_MS
        values = np.column_stack(
            [table.column(m).to_numpy().astype(np.float32, copy=False) for m in metrics]
        )
        chunks.append((devices, day, values))
    n = len(index)
    sums = np.zeros((n * days, len(metrics)), dtype=np.float64)
    counts = np.zeros((n * days, len(metrics)), dtype=np.float64)
    for devices, day, values in chunks:
        flat = devices * days + day
        observed = np.isfinite(values)
        for j in range(len(metrics)):
            sums[:, j] += np.bincount(
                flat, weights=np.where(observed[:, j], values[:, j], 0.0), minlength=n * days
            )
            counts[:, j] += np.bincount(flat, weights=observed[:, j], minlength=n * days)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan).astype(np.float32)
    order = sorted(index, key=lambda d: d)
    position = np.asarray([index[d] for d in order])
    means = means.reshape(n, days, len(metrics))[position]
    return DailyMeans(machine_type, tuple(order), metrics, start, means)
