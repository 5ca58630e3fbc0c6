"""Time every SQL panel of every dashboard on a month of a large fleet (plain PostgreSQL).

Run: ``nice -n 10 .venv/bin/python -m benchmarks.dashboards.bench_panels``
(defaults: 1,000 devices, 30 days, one reading a minute: 43.2 M readings).

Creates its own database on the server (``--server``, default the local PostgreSQL), loads
the simulated fleet (``dashboards.sample_fleet``) with the binary COPY writer of the
ingest, computes the hourly and daily rollups from the same simulated values while loading
(the refresh would recompute the same numbers from the table; ``--check-rollups`` compares
a sample against the raw rows), runs ``ANALYZE``, then times each panel query, expanded as
Grafana expands it for the last ``--range-days`` days. Panels that read telemetry are also
timed with their raw-telemetry branch forced (the same query without the rollups): that is
the baseline. Medians of ``--reps`` runs after one warm-up run; the database is dropped at
the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import psycopg
from psycopg import sql

from backend.storage.connect import connect
from backend.storage.copy_writer import (
    TelemetryCopyBatch,
    copy_telemetry,
    pack_reading,
    pack_readings,
)
from backend.storage.dialect import Dialect
from backend.storage.migrator import apply_migrations, dialect_of
from dashboards.catalog import all_dashboards
from dashboards.macros import QueryContext, TemplateValue, expand
from dashboards.model import SqlTarget
from dashboards.ranges import SPAN, raw_only
from dashboards.sample_fleet import load_sample_fleet, start_for
from firmware_sim.config import SimConfig
from firmware_sim.engine import DayBlock
from firmware_sim.machines import machine_spec

Conn = psycopg.Connection[tuple[object, ...]]
BUDGET_MS = 200.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class RollupLoader:
    """COPYs each day block into telemetry and accumulates its hourly and daily rollups."""

    def __init__(self, conn: Conn, dialect: Dialect, config: SimConfig) -> None:
        self.conn = conn
        self.dialect = dialect
        self.config = config
        self.steps_per_hour = 3600 // config.interval_s
        self.hourly_rows = 0
        self.daily_rows = 0
        self.copy_s = 0.0

    def __call__(self, block: DayBlock, device_ids: Mapping[str, int]) -> int:
        names = machine_spec(block.machine_type).metric_names
        values = np.stack([block.values[n] for n in names], axis=-1).astype(np.float64)
        devices, steps = int(values.shape[0]), int(values.shape[1])
        start_ms = int(self.config.start_at.timestamp() * 1000)
        step_ms = self.config.interval_s * 1000
        seqs = np.arange(block.first_step, block.first_step + steps, dtype=np.int64)
        times_ms = start_ms + seqs * step_ms
        parts: list[bytes] = []
        for index, external_id in enumerate(block.device_ids):
            device_id = device_ids[external_id]
            rows = values[index]
            complete = ~np.isnan(rows).any(axis=1)
            parts.append(
                pack_readings(times_ms[complete], device_id, seqs[complete], rows[complete])
            )
            for k in np.flatnonzero(~complete):
                vals = [None if np.isnan(v) else float(v) for v in rows[k]]
                parts.append(pack_reading(int(times_ms[k]), device_id, int(seqs[k]), vals))
        day_start = self.config.start_at + timedelta(seconds=int(seqs[0]) * self.config.interval_s)
        started = time.perf_counter()
        with self.conn.transaction():
            self.dialect.ensure_partitions(
                self.conn, "telemetry", day_start, day_start + timedelta(days=1)
            )
            copy_telemetry(self.conn, TelemetryCopyBatch(parts, devices * steps))
        self._rollups(block, device_ids, values, day_start)
        self.copy_s += time.perf_counter() - started
        return devices * steps

    def _rollups(
        self,
        block: DayBlock,
        device_ids: Mapping[str, int],
        values: np.ndarray,
        day_start: datetime,
    ) -> None:
        devices, steps, width = values.shape
        hours = steps // self.steps_per_hour
        by_hour = values.reshape(devices, hours, self.steps_per_hour, width)
        present = ~np.isnan(by_hour)
        n = present.sum(axis=2)
        total = np.where(present, by_hour, 0.0).sum(axis=2)
        low = np.fmin.reduce(by_hour, axis=2)
        high = np.fmax.reduce(by_hour, axis=2)
        ids = [device_ids[e] for e in block.device_ids]
        hourly = (
            "COPY telemetry_hourly (bucket, device_id, position, n, total, min, max) FROM STDIN"
        )
        with self.conn.transaction(), self.conn.cursor() as cur:
            with cur.copy(hourly) as copy:
                for d, device_id in enumerate(ids):
                    for h in range(hours):
                        bucket = day_start + timedelta(hours=h)
                        for p in range(width):
                            count = int(n[d, h, p])
                            if count:
                                copy.write_row(
                                    (bucket, device_id, p + 1, count, float(total[d, h, p]),
                                     float(low[d, h, p]), float(high[d, h, p]))
                                )  # fmt: skip
                                self.hourly_rows += 1
            daily = (
                "COPY telemetry_daily (bucket, device_id, position, n, total, min, max) FROM STDIN"
            )
            day_n, day_total = n.sum(axis=1), total.sum(axis=1)
            day_low, day_high = np.fmin.reduce(low, axis=1), np.fmax.reduce(high, axis=1)
            with cur.copy(daily) as copy:
                for d, device_id in enumerate(ids):
                    for p in range(width):
                        if day_n[d, p]:
                            copy.write_row(
                                (day_start, device_id, p + 1, int(day_n[d, p]),
                                 float(day_total[d, p]), float(day_low[d, p]),
                                 float(day_high[d, p]))
                            )  # fmt: skip
                            self.daily_rows += 1


def check_rollups(conn: Conn, start: datetime) -> None:
    """A sample of hourly and daily rollup rows equals the aggregate of the raw readings."""
    for table, width in (("telemetry_hourly", "1 hour"), ("telemetry_daily", "1 day")):
        mismatches = conn.execute(
            f"WITH sample AS (SELECT * FROM {table} WHERE bucket = %s AND device_id <= 5) "
            "SELECT count(*) FROM sample s CROSS JOIN LATERAL ("
            " SELECT count(t.vals[s.position]) AS n, sum(t.vals[s.position]) AS total,"
            "  min(t.vals[s.position]) AS lo, max(t.vals[s.position]) AS hi FROM telemetry t"
            f" WHERE t.device_id = s.device_id AND t.time >= s.bucket"
            f" AND t.time < s.bucket + interval '{width}') r "
            "WHERE r.n <> s.n OR abs(r.total - s.total) > 1e-6 * greatest(1, abs(s.total))"
            " OR r.lo <> s.min OR r.hi <> s.max",
            (start,),
        ).fetchone()
        if mismatches is None or mismatches[0] != 0:
            raise SystemExit(f"{table}: rollup rows differ from the raw readings: {mismatches}")
    log("rollup sample matches the raw readings")


@dataclass
class Timing:
    dashboard: str
    panel: str
    ref: str
    rows: int
    median_ms: float
    baseline_ms: float | None


def _time(conn: Conn, query: str, reps: int) -> tuple[float, int]:
    rows = len(conn.execute(query).fetchall())  # warm-up
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        conn.execute(query).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), rows


def _variables(conn: Conn) -> dict[str, TemplateValue]:
    row = conn.execute(
        "SELECT d.id, d.account_id FROM devices d JOIN tickets t ON t.device_id = d.id "
        "GROUP BY d.id ORDER BY count(*) DESC, d.id LIMIT 1"
    ).fetchone()
    assert row is not None
    device, account = row
    metrics = [
        str(name)
        for (name,) in conn.execute(
            "SELECT m.name FROM devices d JOIN device_model_metrics dm ON dm.model_id = "
            "d.model_id JOIN metrics m ON m.id = dm.metric_id WHERE d.id = %s "
            "ORDER BY dm.position",
            (device,),
        )
    ]
    regions = [str(r) for (r,) in conn.execute("SELECT DISTINCT region FROM sites ORDER BY 1")]
    return {
        "device": TemplateValue.single(str(device)),
        "account": TemplateValue.single(str(account)),
        "metric": TemplateValue.many(metrics, include_all=True),
        "region": TemplateValue.many(regions, include_all=True),
    }


def time_panels(
    conn: Conn, start: datetime, end: datetime, reps: int, baseline: bool
) -> list[Timing]:
    variables = _variables(conn)
    timings = []
    for dashboard in all_dashboards():
        for panel in dashboard.panels:
            for index, target in enumerate(panel.targets):
                if not isinstance(target, SqlTarget):
                    continue
                context = QueryContext(start, end, variables, min_interval=panel.min_interval)
                query = expand(target.sql, context)
                median, rows = _time(conn, query, reps)
                raw_ms = None
                if baseline and SPAN in target.sql:
                    raw_ms, _ = _time(conn, expand(raw_only(target.sql), context), reps)
                timings.append(
                    Timing(dashboard.title, panel.title, chr(65 + index), rows, median, raw_ms)
                )
                log(f"{panel.title} {chr(65 + index)}: {median:.1f} ms ({rows} rows)")
    return timings


def report(timings: list[Timing], label: str) -> str:
    lines = [
        f"### {label}",
        "",
        "| dashboard | panel | query | rows | median ms | raw-telemetry baseline ms | ratio |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for t in timings:
        base = f"{t.baseline_ms:,.1f}" if t.baseline_ms is not None else "n/a"
        ratio = f"{t.baseline_ms / t.median_ms:,.0f}×" if t.baseline_ms else ""
        lines.append(
            f"| {t.dashboard.removeprefix('fleetcare / ')} | {t.panel} | {t.ref} | {t.rows} | "
            f"{t.median_ms:,.1f} | {base} | {ratio} |"
        )
    worst = max(timings, key=lambda t: t.median_ms)
    over = [t for t in timings if t.median_ms > BUDGET_MS]
    lines += [
        "",
        f"Slowest: {worst.panel} ({worst.ref}) at {worst.median_ms:,.1f} ms; "
        f"{len(over)} of {len(timings)} queries over {BUDGET_MS:.0f} ms.",
    ]
    return "\n".join(lines)


def reuse(args: argparse.Namespace) -> int:
    """Time the panels again on a database a previous run kept (no load)."""
    url = psycopg.conninfo.make_conninfo(args.server, dbname=args.reuse)
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(bucket), count(DISTINCT device_id) FROM telemetry_daily"
        ).fetchone()
        assert row is not None
        last, devices = row
        assert isinstance(last, datetime)
        end = last + timedelta(days=1, hours=1)
        timings = time_panels(
            conn, end - timedelta(days=args.range_days), end, args.reps, not args.no_baseline
        )
        six_hours = time_panels(conn, end - timedelta(hours=6), end, args.reps, False)
    print(f"## Dashboards on database {args.reuse} ({devices:,} devices)")
    print()
    print(report(timings, f"Range: last {args.range_days} days"))
    print()
    print(report(six_hours, "Range: last 6 hours"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval-s", type=int, default=60)
    parser.add_argument("--range-days", type=int, default=30)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--check-rollups", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", metavar="DBNAME", help="time the panels on a database kept by --keep"
    )
    args = parser.parse_args(argv)
    if args.reuse:
        return reuse(args)

    dbname = f"fleetcare_bench_dash_{secrets.token_hex(3)}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = psycopg.conninfo.make_conninfo(args.server, dbname=dbname)
    try:
        apply_migrations(url, dialect="postgres")
        config = SimConfig(
            seed=7,
            devices=args.devices,
            days=args.days,
            interval_s=args.interval_s,
            start=start_for(args.days),
        )
        with connect(url, autocommit=True) as conn:
            dialect = dialect_of(conn)
            loader = RollupLoader(conn, dialect, config)
            started = time.perf_counter()
            fleet = load_sample_fleet(
                conn, dialect, config, block_writer=loader, refresh_rollups=False
            )
            load_s = time.perf_counter() - started
            conn.execute("DELETE FROM rollup_invalidations")  # the rollups are complete
            conn.execute("VACUUM ANALYZE")
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                for table in ("predictions", "health_scores", "tickets", "notification_outbox")
            }
            log(
                f"loaded {fleet.readings:,} readings in {load_s:.0f} s ({loader.copy_s:.0f} s COPY)"
            )
            if args.check_rollups:
                check_rollups(conn, fleet.start + timedelta(days=1))
            end = fleet.end + timedelta(hours=1)
            timings = time_panels(
                conn, end - timedelta(days=args.range_days), end, args.reps, not args.no_baseline
            )
            six_hours = time_panels(conn, end - timedelta(hours=6), end, args.reps, False)
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size_row = size.fetchone()
        print(f"## Dashboards on {args.devices:,} devices × {args.days} days, one reading per "
              f"{args.interval_s} s: {fleet.readings:,} readings")  # fmt: skip
        print()
        print(
            f"Load {load_s:.0f} s; hourly rollup rows {loader.hourly_rows:,}, daily "
            f"{loader.daily_rows:,}; other rows: "
            + ", ".join(f"{k} {v[0] if v else 0:,}" for k, v in counts.items())
            + f"; database {size_row[0] if size_row else '?'}."
        )
        print()
        print(report(timings, f"Range: last {args.range_days} days"))
        print()
        print(report(six_hours, "Range: last 6 hours"))
    finally:
        if not args.keep:
            with psycopg.connect(args.server, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
        else:
            log(f"kept database {dbname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
