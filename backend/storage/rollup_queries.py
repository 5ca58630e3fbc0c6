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


_POSITION_TO_METRIC = (
    "JOIN devices d ON d.id = r.device_id "
    "JOIN device_model_metrics dm ON dm.model_id = d.model_id AND dm.position = r.position"
)


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
        "SELECT r.bucket, r.device_id, dm.metric_id, r.n::bigint, r.total / NULLIF(r.n, 0), "
        "r.min, r.max FROM {table} r " + _POSITION_TO_METRIC + " "
        "WHERE r.bucket >= %(start)s AND r.bucket < %(end)s "
        "AND (%(devices)s::bigint[] IS NULL OR r.device_id = ANY(%(devices)s)) "
        "AND (%(metrics)s::int[] IS NULL OR dm.metric_id = ANY(%(metrics)s)) "
        "ORDER BY r.device_id, dm.metric_id, r.bucket"
    ).format(table=sql.Identifier(table))
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
    bucket = dialect.time_bucket(sql.SQL("%(width)s::interval"), sql.SQL("t.time"))
    query = sql.SQL(
        "SELECT r.bucket, r.device_id, dm.metric_id, r.n, r.avg, r.min, r.max FROM ("
        "  SELECT {bucket} AS bucket, t.device_id, u.position, count(u.value) AS n, "
        "  avg(u.value) AS avg, min(u.value) AS min, max(u.value) AS max "
        "  FROM telemetry t "
        "  CROSS JOIN LATERAL unnest(t.vals) WITH ORDINALITY AS u(value, position) "
        "  WHERE t.time >= %(start)s AND t.time < %(end)s "
        "  AND (%(devices)s::bigint[] IS NULL OR t.device_id = ANY(%(devices)s)) "
        "  GROUP BY 1, 2, 3) r " + _POSITION_TO_METRIC + " "
        "WHERE (%(metrics)s::int[] IS NULL OR dm.metric_id = ANY(%(metrics)s)) "
        "ORDER BY r.device_id, dm.metric_id, r.bucket"
    ).format(bucket=bucket)
    params = {
        "width": width,
        "start": start,
        "end": end,
        "devices": device_ids,
        "metrics": metric_ids,
    }
    return [Bucket(*row) for row in conn.execute(query, params)]  # type: ignore[arg-type]
