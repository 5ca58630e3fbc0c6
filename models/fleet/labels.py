"""What happened after each device-day, from the simulator's ground truth.

For the end of each day ``t`` of each device: days until the next wear failure of each
mode, whether the device is down (failed, not yet repaired), and days until a maintenance
visit that removed a mode's wear while it was advanced. Such a visit hides whether the
machine would have failed: a prediction followed by it can be neither confirmed nor
refuted, so it is censored (left out of training targets and of precision), not counted
as a false alarm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from models.errors import DataSetError
from models.fleet.daily import DAY_MS, DailyMeans

#: A maintenance visit censors a mode when it removed wear from at least this level.
CENSOR_DEGRADATION = 0.3


@dataclass(frozen=True)
class Outcomes:
    """Arrays over ``(device, day[, mode])`` aligned with a :class:`DailyMeans`.

    Attributes:
        modes: the wear modes of the machine type, in column order.
        to_failure: days from the end of the day to the next wear failure of each mode
            (``inf``: none before the end of the history).
        to_repair: days to the next visit that removed advanced wear of each mode.
        down: the device is failed and not yet repaired at the end of the day, or failed
            during it.
        remaining: days from the end of the day to the end of the history.
        failures: ``(device index, failure day as float, mode)`` of every failure,
            random ones included (their mode is not in ``modes``).
    """

    modes: tuple[str, ...]
    to_failure: NDArray[np.float64]
    to_repair: NDArray[np.float64]
    down: NDArray[np.bool_]
    remaining: NDArray[np.float64]
    failures: tuple[tuple[int, float, str], ...]


def _next_after(events: NDArray[np.float64], ends: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each end time, the time to the first event strictly after it (inf if none)."""
    if events.size == 0:
        return np.full(ends.shape, np.inf)
    events = np.sort(events)
    at = np.searchsorted(events, ends, side="right")
    nxt = np.where(at < events.size, events[np.minimum(at, events.size - 1)], np.inf)
    out: NDArray[np.float64] = nxt - ends
    return out


def outcomes_of(
    devices: int,
    days: int,
    modes: tuple[str, ...],
    failures: Sequence[tuple[int, float, float, str]],
    repairs: Sequence[tuple[int, float, str]],
) -> Outcomes:
    """Outcomes of ``devices`` x ``days`` from what happened, times in days since the start.

    Args:
        failures: ``(device index, failed at, back in service at, mode)``; a mode outside
            ``modes`` (a random failure) makes the device down but is nobody's target.
        repairs: ``(device index, at, mode)``: a visit that removed advanced wear of ``mode``.
    """
    ends = np.arange(1, days + 1, dtype=np.float64)
    fail_days: dict[tuple[int, str], list[float]] = {}
    down = np.zeros((devices, days), dtype=bool)
    listed: list[tuple[int, float, str]] = []
    for i, at, back, mode in failures:
        listed.append((i, at, mode))
        fail_days.setdefault((i, mode), []).append(at)
        first, last = int(np.floor(at)), min(int(np.ceil(back)), days)
        down[i, max(first, 0) : last] = True
    repair_days: dict[tuple[int, str], list[float]] = {}
    for i, at, mode in repairs:
        repair_days.setdefault((i, mode), []).append(at)
    to_failure = np.empty((devices, days, len(modes)))
    to_repair = np.empty((devices, days, len(modes)))
    for i in range(devices):
        for k, mode in enumerate(modes):
            to_failure[i, :, k] = _next_after(np.asarray(fail_days.get((i, mode), [])), ends)
            to_repair[i, :, k] = _next_after(np.asarray(repair_days.get((i, mode), [])), ends)
    remaining = np.broadcast_to(days - ends, (devices, days)).copy()
    return Outcomes(modes, to_failure, to_repair, down, remaining, tuple(sorted(listed)))


def read_outcomes(truth_dir: Path, daily: DailyMeans, modes: tuple[str, ...]) -> Outcomes:
    """Outcomes of every device-day of ``daily`` from ``ground_truth/`` files."""
    failures_file = truth_dir / "failures.parquet"
    maintenance_file = truth_dir / "maintenance.parquet"
    if not failures_file.is_file() or not maintenance_file.is_file():
        raise DataSetError(str(truth_dir), "no failures.parquet / maintenance.parquet")
    start_ms = (daily.start.toordinal() - 719163) * DAY_MS
    index = {d: i for i, d in enumerate(daily.device_ids)}

    def day_of(ts: object) -> float:
        return (int(ts.timestamp() * 1000) - start_ms) / DAY_MS  # type: ignore[attr-defined]

    failures = [
        (index[str(f["device_id"])], day_of(f["failed_at"]), day_of(f["resolved_at"]),
         str(f["mode"]))
        for f in pq.read_table(failures_file).to_pylist()
        if str(f["device_id"]) in index
    ]  # fmt: skip
    repairs = [
        (index[str(v["device_id"])], day_of(v["started_at"]), str(change["mode"]))
        for v in pq.read_table(maintenance_file).to_pylist()
        if str(v["device_id"]) in index
        for change in json.loads(v["changes"])
        if change["action"] in ("replaced", "reduced") and change["d_before"] >= CENSOR_DEGRADATION
    ]
    return outcomes_of(len(daily.device_ids), daily.days, modes, failures, repairs)
