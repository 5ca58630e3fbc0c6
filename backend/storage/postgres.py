"""Plain PostgreSQL dialect: time partitions, rollup tables refreshed from an invalidation log.

Mirrors TimescaleDB's semantics so that both dialects return the same numbers:
``refresh_rollups(start, end)`` recomputes the buckets that overlap the window *and* were
invalidated by writes; invalidations outside the window are kept for a later refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from psycopg import sql

from backend.storage.dialect import (
    RETENTION_SETTINGS,
    TIME_PARTITIONED_TABLES,
    Connection,
    DialectName,
    RetentionReport,
    day_ceil,
    day_floor,
    hour_ceil,
    hour_floor,
    retention_days,
)

# TimescaleDB's time_bucket origin (a Monday), so that every width aligns the same way.
ORIGIN = sql.SQL("TIMESTAMPTZ '2000-01-03 00:00:00+00'")

_RECOMPUTE_HOURLY = sql.SQL(
    """
    INSERT INTO telemetry_hourly (bucket, device_id, position, n, total, min, max)
    SELECT date_bin(INTERVAL '1 hour', t.time, {origin}), t.device_id, u.position,
           count(u.value), sum(u.value), min(u.value), max(u.value)
    FROM telemetry t
    CROSS JOIN LATERAL unnest(t.vals) WITH ORDINALITY AS u (value, position)
    WHERE t.time >= %(lo)s AND t.time < %(hi)s
    GROUP BY 1, 2, 3
    """
).format(origin=ORIGIN)

_RECOMPUTE_DAILY = sql.SQL(
    """
    INSERT INTO telemetry_daily (bucket, device_id, position, n, total, min, max)
    SELECT date_bin(INTERVAL '1 day', bucket, {origin}), device_id, position,
           sum(n), sum(total), min(min), max(max)
    FROM telemetry_hourly
    WHERE bucket >= %(lo)s AND bucket < %(hi)s
    GROUP BY 1, 2, 3
    """
).format(origin=ORIGIN)


def _merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class PostgresDialect:
    """Storage on plain PostgreSQL (no extension needed)."""

    name: DialectName = "postgres"

    def time_bucket(self, width: sql.Composable, column: sql.Composable) -> sql.Composable:
        return sql.SQL("date_bin({}, {}, {})").format(width, column, ORIGIN)

    def ensure_partitions(
        self, conn: Connection, table: str, start: datetime, end: datetime
    ) -> int:
        row = conn.execute(
            "SELECT fleetcare_ensure_partitions(%s, %s, %s)", (table, start, end)
        ).fetchone()
        return int(str(row[0])) if row else 0

    def refresh_rollups(self, conn: Connection, start: datetime, end: datetime) -> None:
        self._refresh(
            conn,
            "telemetry_hourly",
            _RECOMPUTE_HOURLY,
            hour_floor(start),
            hour_ceil(end),
            hour_floor,
            hour_ceil,
            next_rollup="telemetry_daily",
        )
        self._refresh(
            conn,
            "telemetry_daily",
            _RECOMPUTE_DAILY,
            day_floor(start),
            day_ceil(end),
            day_floor,
            day_ceil,
            next_rollup=None,
        )

    def _refresh(
        self,
        conn: Connection,
        rollup: str,
        recompute: sql.Composed,
        window_lo: datetime,
        window_hi: datetime,
        floor: Callable[[datetime], datetime],
        ceil: Callable[[datetime], datetime],
        next_rollup: str | None,
    ) -> None:
        if window_hi <= window_lo:
            return
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('fleetcare.rollups.' || %s))", (rollup,)
            )
            rows = conn.execute(
                "DELETE FROM rollup_invalidations WHERE rollup = %s "
                "AND lowest < %s AND greatest >= %s RETURNING lowest, greatest",
                (rollup, window_hi, window_lo),
            ).fetchall()
            touched: list[tuple[datetime, datetime]] = []
            leftovers: list[tuple[datetime, datetime]] = []
            for lowest, greatest in rows:
                if not isinstance(lowest, datetime) or not isinstance(greatest, datetime):
                    raise TypeError("rollup_invalidations holds non-timestamp bounds")
                lo = max(floor(lowest), window_lo)
                hi = min(ceil(greatest + timedelta(microseconds=1)), window_hi)
                if lo < hi:
                    touched.append((lo, hi))
                if lowest < window_lo:
                    leftovers.append((lowest, window_lo - timedelta(microseconds=1)))
                if greatest >= window_hi:
                    leftovers.append((window_hi, greatest))
            for lo, hi in leftovers:
                conn.execute(
                    "INSERT INTO rollup_invalidations (rollup, lowest, greatest) "
                    "VALUES (%s, %s, %s)",
                    (rollup, lo, hi),
                )
            for lo, hi in _merge(touched):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE bucket >= %s AND bucket < %s").format(
                        sql.Identifier(rollup)
                    ),
                    (lo, hi),
                )
                conn.execute(recompute, {"lo": lo, "hi": hi})
                if next_rollup is not None:
                    conn.execute(
                        "INSERT INTO rollup_invalidations (rollup, lowest, greatest) "
                        "VALUES (%s, %s, %s)",
                        (next_rollup, lo, hi - timedelta(microseconds=1)),
                    )

    def apply_retention(self, conn: Connection, now: datetime) -> RetentionReport:
        report = RetentionReport()
        days = retention_days(conn)
        with conn.transaction():
            for table, setting in RETENTION_SETTINGS.items():
                cutoff = now - timedelta(days=days[setting])
                if table in TIME_PARTITIONED_TABLES:
                    rows = conn.execute(
                        "SELECT fleetcare_drop_partitions_before(%s, %s)", (table, cutoff)
                    ).fetchall()
                    report.dropped[table] = [str(row[0]) for row in rows]
                else:
                    cur = conn.execute(
                        sql.SQL("DELETE FROM {} WHERE bucket < %s").format(sql.Identifier(table)),
                        (cutoff,),
                    )
                    report.deleted_rows[table] = cur.rowcount
        return report

    def set_retention(self, conn: Connection, setting: str, days: int) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE storage_settings SET value = %s WHERE key = %s", (str(days), setting)
            )
