"""What a fleet model learns from, read from the fleet's own database.

The fleet models read daily means per device and metric, and learn from what happened
after each day. Both are in the database once a fleet has run for a while:

* **daily means**: the daily rollup (``telemetry_daily``: ``total / n``), the same numbers
  the scoring worker reads, per catalogue model (each product has its own metric
  positions);
* **failures with their mode**: tickets whose outcome is ``failure_confirmed`` (the mode
  the ticket named, at the device's last failure event between the ticket and its
  resolution, the breakdown the repair resolved, else at the resolution), and the rows of a
  field-service **repair log** (:mod:`models.fleet.repair_log`), which also cover the
  breakdowns no ticket predicted;
* **censoring**: a ``failure_prevented`` ticket removed that mode's wear when it was
  resolved, so whether the machine would have failed is unknowable: the days in the
  horizon before it are no one's target. A failure event (``trip``, ``failure``) that no
  diagnosis covers is a breakdown of unknown mode: the device is down until it reports
  again, and every mode is censored in the horizon before it, rather than read as
  "no failure".

Days are whole UTC days from ``first_day``; a day without a rollup row is NaN, never 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg

from backend.scoring.windows import catalogue_models, daily_rows, metric_columns, place_rows
from models.errors import DataSetError
from models.fleet.daily import DailyMeans
from models.fleet.labels import Outcomes, outcomes_of
from models.fleet.repair_log import RepairRecord

#: A failure event this close to a diagnosis is that breakdown; a ticket and a repair-log
#: row of the same mode this close are one breakdown (of two modes: two breakdowns).
SAME_BREAKDOWN = timedelta(days=1)
#: The mode of a breakdown that no diagnosis covers (never a model's target).
UNATTRIBUTED = "unattributed"
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class LabelSources:
    """Where the labels came from, for the person training the model.

    Attributes:
        confirmed_tickets: failures from tickets with outcome ``failure_confirmed``.
        repair_log: failures from the repair log (devices of this machine type).
        repair_log_elsewhere: repair-log rows of devices not of this machine type, or
            unknown to the database (not used).
        prevented_tickets: ``failure_prevented`` tickets (censoring their mode).
        unattributed: failure events that no diagnosis covers (censoring every mode).
        failures: diagnosed failures per mode.
    """

    confirmed_tickets: int = 0
    repair_log: int = 0
    repair_log_elsewhere: int = 0
    prevented_tickets: int = 0
    unattributed: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseHistory:
    """Daily means and outcomes of one machine type, and a digest of both."""

    daily: DailyMeans
    outcomes: Outcomes
    sources: LabelSources
    sha256: str


@dataclass(frozen=True)
class _Breakdown:
    device: int
    at: datetime
    back: datetime | None
    mode: str


def _metric_names(conn: psycopg.Connection[Any], model_ids: list[int]) -> tuple[str, ...]:
    """The metrics of the catalogue models, in the first model's position order, then the
    others' new ones."""
    rows = conn.execute(
        "SELECT m.name FROM device_model_metrics dm JOIN metrics m ON m.id = dm.metric_id "
        "WHERE dm.model_id = ANY(%s) ORDER BY array_position(%s::int[], dm.model_id), "
        "dm.position",
        (model_ids, model_ids),
    ).fetchall()
    return tuple(dict.fromkeys(str(r[0]) for r in rows))


def _daily_means(
    conn: psycopg.Connection[Any],
    machine_type: str,
    devices: list[tuple[int, str, int]],
    first_day: date,
    days: int,
) -> DailyMeans:
    model_ids = sorted({model for _, _, model in devices})
    metrics = _metric_names(conn, model_ids)
    if not metrics:
        raise DataSetError(machine_type, "its device models have no metrics in the catalogue")
    means = np.full((len(devices), days, len(metrics)), np.nan, dtype=np.float32)
    for model_id in model_ids:
        index = np.asarray([k for k, (_, _, m) in enumerate(devices) if m == model_id])
        ids = np.asarray([devices[k][0] for k in index], dtype=np.int64)
        columns = metric_columns(conn, model_id, metrics)
        rows = daily_rows(
            conn, ids.tolist(), list(columns), first_day, first_day + timedelta(days=days)
        )
        if rows.size == 0:
            continue
        row, column = place_rows(rows, ids, columns)
        day = rows["day"].astype(np.int64) - (first_day - _EPOCH).days
        keep = (day >= 0) & (day < days) & (column >= 0)
        means[index[row[keep]], day[keep], column[keep]] = rows["mean"][keep]
    return DailyMeans(
        machine_type=machine_type,
        device_ids=tuple(external for _, external, _ in devices),
        metrics=metrics,
        start=first_day,
        means=means,
    )


def _near(times: list[datetime], at: datetime) -> bool:
    return any(abs(t - at) <= SAME_BREAKDOWN for t in times)


def _breakdowns(
    conn: psycopg.Connection[Any],
    ids: list[int],
    index: dict[int, int],
    external: dict[str, int],
    start: datetime,
    end: datetime,
    failure_event_kinds: Sequence[str],
    repairs: Sequence[RepairRecord],
) -> tuple[list[_Breakdown], list[tuple[int, datetime, str]], LabelSources]:
    events: dict[int, list[datetime]] = {}
    for device_id, at in conn.execute(
        "SELECT device_id, time FROM device_events WHERE device_id = ANY(%s) "
        "AND kind = ANY(%s) AND time >= %s AND time < %s ORDER BY time",
        (ids, list(failure_event_kinds), start, end),
    ).fetchall():
        events.setdefault(index[int(device_id)], []).append(at)
    tickets = conn.execute(
        "SELECT device_id, failure_mode, outcome, created_at, coalesce(resolved_at, updated_at) "
        "FROM tickets WHERE device_id = ANY(%s) "
        "AND outcome IN ('failure_confirmed', 'failure_prevented') "
        "AND coalesce(resolved_at, updated_at) >= %s AND created_at < %s ORDER BY id",
        (ids, start, end),
    ).fetchall()
    diagnosed: list[_Breakdown] = []
    elsewhere = 0
    for record in repairs:
        device = external.get(record.device_id)
        if device is None:
            elsewhere += 1
            continue
        if start <= record.failed_at < end:
            diagnosed.append(_Breakdown(device, record.failed_at, record.repaired_at, record.mode))
    from_log = len(diagnosed)
    known: dict[int, list[datetime]] = {}
    known_mode: dict[tuple[int, str], list[datetime]] = {}
    for b in diagnosed:
        known.setdefault(b.device, []).append(b.at)
        known_mode.setdefault((b.device, b.mode), []).append(b.at)
    prevented: list[tuple[int, datetime, str]] = []
    confirmed = 0
    for device_id, mode, outcome, created, resolved in tickets:
        device = index[int(device_id)]
        if outcome == "failure_prevented":
            prevented.append((device, resolved, str(mode)))
            continue
        # The breakdown the repair resolved: the last failure event before the resolution
        # (an earlier one in the ticket's window is another breakdown, diagnosed or not).
        failed = next(
            (t for t in reversed(events.get(device, [])) if created <= t <= resolved), resolved
        )
        if _near(known_mode.get((device, str(mode)), []), failed):
            continue  # the repair log already has this breakdown
        diagnosed.append(_Breakdown(device, failed, resolved, str(mode)))
        known.setdefault(device, []).append(failed)
        confirmed += 1
    unattributed = [
        _Breakdown(device, at, None, UNATTRIBUTED)
        for device, times in events.items()
        for at in times
        if not _near(known.get(device, []), at)
    ]
    per_mode: dict[str, int] = {}
    for b in diagnosed:
        per_mode[b.mode] = per_mode.get(b.mode, 0) + 1
    sources = LabelSources(
        confirmed_tickets=confirmed,
        repair_log=from_log,
        repair_log_elsewhere=elsewhere,
        prevented_tickets=len(prevented),
        unattributed=len(unattributed),
        failures=dict(sorted(per_mode.items())),
    )
    return diagnosed + unattributed, prevented, sources


def _back_in_service(means: np.ndarray, device: int, failed_day: float) -> float:
    """The start of the first day after ``failed_day`` with any observed value."""
    days = means.shape[1]
    after = int(np.floor(failed_day)) + 1
    if after >= days:
        return float(days)
    seen = np.flatnonzero(np.isfinite(means[device, after:]).any(axis=1))
    return float(after + seen[0]) if seen.size else float(days)


def _digest(
    daily: DailyMeans,
    modes: tuple[str, ...],
    failures: list[tuple[int, float, float, str]],
    censored: list[tuple[int, float, str]],
) -> str:
    digest = hashlib.sha256()
    digest.update(repr((daily.machine_type, daily.device_ids, daily.metrics)).encode())
    digest.update(daily.start.isoformat().encode())
    digest.update(np.ascontiguousarray(daily.means).tobytes())
    digest.update(repr((modes, sorted(failures), sorted(censored))).encode())
    return digest.hexdigest()


def read_training_history(
    conn: psycopg.Connection[Any],
    machine_type: str,
    first_day: date,
    end_day: date,
    *,
    failure_event_kinds: Sequence[str] = ("trip", "failure"),
    repairs: Sequence[RepairRecord] = (),
    modes: Sequence[str] | None = None,
) -> DatabaseHistory:
    """Daily means and outcomes of every device of ``machine_type`` for days in
    ``[first_day, end_day)``.

    ``machine_type`` is a catalogue model's name or kind (as the scoring worker matches a
    fleet model to devices). Decommissioned devices are included: their history happened.
    ``modes``: the failure modes to learn (default: every mode diagnosed in the range). A
    diagnosed failure of another mode (one that leaves no warning, say) keeps the device
    down until it is repaired but is no one's target, and censors nothing.

    Raises:
        DataSetError: no device model or device of that type, or an empty range.
    """
    days = (end_day - first_day).days
    if days < 1:
        raise DataSetError(machine_type, f"empty range of days: {first_day} to {end_day}")
    model_ids = catalogue_models(conn, machine_type)
    if not model_ids:
        known = [str(r[0]) for r in conn.execute(
            "SELECT DISTINCT kind FROM device_models ORDER BY 1").fetchall()]  # fmt: skip
        raise DataSetError(
            machine_type,
            "no device model of that name or kind; kinds in the catalogue: "
            + (", ".join(known) or "none"),
        )
    devices = [
        (int(r[0]), str(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT id, external_id, model_id FROM devices WHERE model_id = ANY(%s) "
            "ORDER BY external_id",
            (model_ids,),
        ).fetchall()
    ]
    if not devices:
        raise DataSetError(machine_type, "no device of that type is registered")
    daily = _daily_means(conn, machine_type, devices, first_day, days)
    start = datetime.combine(first_day, time.min, UTC)
    end = datetime.combine(end_day, time.min, UTC)
    index = {device_id: k for k, (device_id, _, _) in enumerate(devices)}
    external = {name: k for k, (_, name, _) in enumerate(devices)}
    breakdowns, prevented, sources = _breakdowns(
        conn, [d for d, _, _ in devices], index, external, start, end, failure_event_kinds,
        repairs,
    )  # fmt: skip

    def day_of(at: datetime) -> float:
        return (at - start).total_seconds() / 86_400

    failures = [
        (
            b.device,
            day_of(b.at),
            day_of(b.back)
            if b.back is not None
            else _back_in_service(daily.means, b.device, day_of(b.at)),
            b.mode,
        )
        for b in breakdowns
    ]
    learnt = tuple(
        modes
        if modes is not None
        else sorted(set(sources.failures) | {mode for _, _, mode in prevented})
    )
    censored = [(device, day_of(at), mode) for device, at, mode in prevented if mode in learnt]
    censored += [
        (b.device, day_of(b.at), mode)
        for b in breakdowns
        if b.mode == UNATTRIBUTED
        for mode in learnt
    ]
    outcomes = outcomes_of(len(devices), days, learnt, failures, censored)
    return DatabaseHistory(daily, outcomes, sources, _digest(daily, learnt, failures, censored))
