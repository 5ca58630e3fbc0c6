"""The failures of the span the demo's fleet published, from the simulator itself.

The simulator is deterministic: for the same seed, fleet and start day, ``generate`` replays
exactly what the live run published, ground truth included. So the truth does not depend on
the live run ending its span cleanly (a Ctrl-C, or a machine too slow for the speed): the
span actually published is read from the database (first and last reading of the fleet
in the live span), the same days are generated offline in a temporary folder (from the
start of the history the span continues), and the failures inside that span are kept.
"""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from backend.ingest.demo_fleet import SimFleetPlan
from fleetcare.demo.outcome import Failure


def published_span(
    conn: psycopg.Connection[Any], devices: list[str], since: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """First and last reading the fleet's devices stored from ``since`` on (the live span:
    the history loaded before it lies earlier); ``None`` before any."""
    row = conn.execute(
        "SELECT min(t.time), max(t.time) FROM telemetry t JOIN devices d ON d.id = t.device_id"
        " WHERE d.external_id = ANY(%s) AND t.time >= coalesce(%s::timestamptz, '-infinity')",
        (devices, since),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def span_failures(plan: SimFleetPlan, first: datetime, last: datetime) -> list[Failure]:
    """The failures the simulator produced between ``first`` and ``last`` (inclusive).

    The live run's physics starts ``plan.history_days`` before the day of ``first`` (the
    span's first reading), so the offline run starts there too.
    """
    import pyarrow.parquet as pq

    from firmware_sim import generate

    first, last = first.astimezone(UTC), last.astimezone(UTC)
    start = first.date() - timedelta(days=plan.history_days)
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    days = max(1, math.ceil((last - midnight).total_seconds() / 86_400))
    config = plan.config().model_copy(update={"start": start, "days": days})
    with tempfile.TemporaryDirectory(prefix="fleetcare-demo-truth-") as folder:
        out = Path(folder)
        generate(config, out / "history", truth_dir=out / "truth")
        rows = pq.read_table(
            out / "truth" / "failures.parquet", columns=["device_id", "failed_at", "mode", "cause"]
        ).to_pylist()
    return [
        Failure(str(r["device_id"]), r["failed_at"], str(r["mode"]), str(r["cause"]))
        for r in rows
        if first <= r["failed_at"] <= last
    ]
