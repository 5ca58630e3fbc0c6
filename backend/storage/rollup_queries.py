"""Read queries over telemetry rollups and raw buckets, identical for both dialects."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from psycopg import sql

from backend.storage.dialect import Connection, Dialect

Rollup = Literal["hourly", "daily"]
_ROLLUP_TABLES: dict[str, str] = {"hourly": "telemetry_hourly", "daily": "telemetry_daily"}


class Bucket(NamedTuple):
    """Aggregates of one metric of one device over one time bucket (``avg`` is None if n=0)."""

    bucket: datetime
    device_id: int
    metric_id: int
    n: int
    avg: float | None
    min: float | None
    max: float | None


def rollup(
    conn: Connection,
    which: Rollup,
    start: datetime,
    end: datetime,
    device_ids: list[int] | None = None,
    metric_ids: list[int] | None = None,
) -> list[Bucket]:
    """Rows of the hourly or daily rollup with ``start <= bucket < end``, ordered."""
    table = _ROLLUP_TABLES[which]
    query = sql.SQL(
        "SELECT bucket, device_id, metric_id, n::bigint, total / NULLIF(n, 0), min, max "
        "FROM {} WHERE bucket >= %(start)s AND bucket < %(end)s "
        "AND (%(devices)s::bigint[] IS NULL OR device_id = ANY(%(devices)s)) "
        "AND (%(metrics)s::int[] IS NULL OR metric_id = ANY(%(metrics)s)) "
        "ORDER BY device_id, metric_id, bucket"
    ).format(sql.Identifier(table))
    params = {"start": start, "end": end, "devices": device_ids, "metrics": metric_ids}
    return [Bucket(*row) for row in conn.execute(query, params)]  # type: ignore[arg-type]


def raw_buckets(
    conn: Connection,
    dialect: Dialect,
    width: timedelta,
    start: datetime,
    end: datetime,
    device_ids: list[int] | None = None,
    metric_ids: list[int] | None = None,
) -> list[Bucket]:
    """Aggregates over raw telemetry in buckets of any ``width`` (e.g. Grafana's interval)."""
    bucket = dialect.time_bucket(sql.SQL("%(width)s::interval"), sql.Identifier("time"))
    query = sql.SQL(
        "SELECT {bucket} AS b, device_id, metric_id, count(value), avg(value), "
        "min(value), max(value) FROM telemetry WHERE time >= %(start)s AND time < %(end)s "
        "AND (%(devices)s::bigint[] IS NULL OR device_id = ANY(%(devices)s)) "
        "AND (%(metrics)s::int[] IS NULL OR metric_id = ANY(%(metrics)s)) "
        "GROUP BY b, device_id, metric_id ORDER BY device_id, metric_id, b"
    ).format(bucket=bucket)
    params = {
        "width": width,
        "start": start,
        "end": end,
        "devices": device_ids,
        "metrics": metric_ids,
    }
    return [Bucket(*row) for row in conn.execute(query, params)]  # type: ignore[arg-type]
