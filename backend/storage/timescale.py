"""TimescaleDB dialect: hypertables, continuous aggregates, compression and retention policies."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import sql

from backend.storage.dialect import (
    RETENTION_SETTINGS,
    Connection,
    DialectName,
    RetentionReport,
    day_ceil,
    day_floor,
    hour_ceil,
    hour_floor,
    retention_days,
)


class TimescaleDialect:
    """Storage on TimescaleDB; its background jobs apply the policies in production."""

    name: DialectName = "timescaledb"

    def time_bucket(self, width: sql.Composable, column: sql.Composable) -> sql.Composable:
        return sql.SQL("time_bucket({}, {})").format(width, column)

    def ensure_partitions(
        self, conn: Connection, table: str, start: datetime, end: datetime
    ) -> int:
        return 0  # hypertables create chunks on insert

    def refresh_rollups(self, conn: Connection, start: datetime, end: datetime) -> None:
        windows = (
            ("telemetry_hourly", hour_floor(start), hour_ceil(end)),
            ("telemetry_daily", day_floor(start), day_ceil(end)),
        )
        for view, lo, hi in windows:
            if hi <= lo:
                continue
            conn.execute(
                "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
                (view, lo, hi),
            )

    def apply_retention(self, conn: Connection, now: datetime) -> RetentionReport:
        report = RetentionReport()
        days = retention_days(conn)
        for table, setting in RETENTION_SETTINGS.items():
            cutoff = now - timedelta(days=days[setting])
            rows = conn.execute(
                "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)", (table, cutoff)
            ).fetchall()
            report.dropped[table] = [str(row[0]) for row in rows]
        return report

    def set_retention(self, conn: Connection, setting: str, days: int) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE storage_settings SET value = %s WHERE key = %s", (str(days), setting)
            )
            for table, table_setting in RETENTION_SETTINGS.items():
                if table_setting != setting:
                    continue
                conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
                conn.execute(
                    "SELECT add_retention_policy(%s, %s::interval)", (table, timedelta(days=days))
                )
