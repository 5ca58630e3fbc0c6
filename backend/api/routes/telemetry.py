"""Bucketed telemetry of one device: hourly and daily buckets from rollups, finer from raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from backend.api.auth import Principal, require_roles
from backend.api.deps import Connection, DbConnection
from backend.api.errors import ApiError, error_responses
from backend.api.params import ResourceId, aware
from backend.api.routes.devices import fetch_device
from backend.storage import dialect as storage_dialect
from backend.storage.migrator import dialect_of
from backend.storage.rollup_queries import Bucket, raw_buckets, rollup

router = APIRouter(tags=["telemetry"])

TelemetryReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]
BucketWidth = Literal["1m", "5m", "15m", "1h", "1d"]

BUCKET_WIDTHS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 10_000
DEFAULT_SPAN = timedelta(hours=24)


class TelemetryPoint(BaseModel):
    """Aggregates of one metric over one bucket (``avg`` is null when ``n`` is 0)."""

    t: datetime = Field(description="start of the bucket (UTC)")
    n: int
    avg: float | None
    min: float | None
    max: float | None


class TelemetrySeries(BaseModel):
    metric: str
    unit: str
    points: list[TelemetryPoint]


class TelemetryResponse(BaseModel):
    """Series of the requested metrics, one point per non-empty bucket."""

    device_id: int
    bucket: BucketWidth
    source: Literal["rollup_hourly", "rollup_daily", "raw"] = Field(
        description="rollup tables for 1h and 1d, raw telemetry for finer buckets"
    )
    start: datetime = Field(alias="from", serialization_alias="from")
    end: datetime = Field(alias="to", serialization_alias="to")
    series: list[TelemetrySeries]

    model_config = {"populate_by_name": True}


def _device_metrics(conn: Connection, device_id: int) -> dict[str, tuple[int, str]]:
    rows = conn.execute(
        "SELECT m.name, m.id, m.unit FROM devices d"
        " JOIN device_model_metrics dm ON dm.model_id = d.model_id"
        " JOIN metrics m ON m.id = dm.metric_id WHERE d.id = %s ORDER BY dm.position",
        (device_id,),
    ).fetchall()
    return {str(name): (int(mid), str(unit)) for name, mid, unit in rows}


def _time_range(
    start: datetime | None, end: datetime | None, width: timedelta
) -> tuple[datetime, datetime]:
    end_utc = aware(end, "to") if end is not None else datetime.now(UTC)
    start_utc = aware(start, "from") if start is not None else end_utc - DEFAULT_SPAN
    if start_utc >= end_utc:
        raise ApiError(422, "invalid_request", "from must be before to")
    if (end_utc - start_utc) / width > MAX_BUCKETS:
        raise ApiError(
            422,
            "invalid_request",
            f"the range holds more than {MAX_BUCKETS} buckets: narrow it or use a wider bucket",
            {"max_buckets": MAX_BUCKETS},
        )
    return start_utc, end_utc


@router.get(
    "/devices/{device_id}/telemetry",
    response_model=TelemetryResponse,
    response_model_by_alias=True,
    summary="Bucketed telemetry of a device",
    responses=error_responses(401, 403, 404, 422),
)
def device_telemetry(
    conn: DbConnection,
    principal: TelemetryReader,
    device_id: ResourceId,
    metric: Annotated[
        list[str] | None,
        Query(description="metric name(s); all of the device model's when omitted"),
    ] = None,
    start: Annotated[
        datetime | None, Query(alias="from", description="inclusive start (default: to - 24 h)")
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="exclusive end (default: now)")
    ] = None,
    bucket: BucketWidth = "1h",
) -> TelemetryResponse:
    """Count, mean, min and max per bucket and metric; at most 10,000 buckets per request."""
    fetch_device(conn, principal, device_id)
    width = BUCKET_WIDTHS[bucket]
    start_utc, end_utc = _time_range(start, end, width)
    available = _device_metrics(conn, device_id)
    names = list(dict.fromkeys(metric)) if metric else list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            "unknown metric(s) for this device's model",
            {"unknown": [n[:64] for n in unknown[:20]], "available": sorted(available)},
        )
    metric_ids = [available[n][0] for n in names]
    storage_conn = cast(storage_dialect.Connection, conn)
    source: Literal["rollup_hourly", "rollup_daily", "raw"]
    rows: list[Bucket]
    if bucket in ("1h", "1d"):
        which: Literal["hourly", "daily"] = "hourly" if bucket == "1h" else "daily"
        source = "rollup_hourly" if which == "hourly" else "rollup_daily"
        rows = rollup(storage_conn, which, start_utc, end_utc, [device_id], metric_ids)
    else:
        source = "raw"
        rows = raw_buckets(
            storage_conn,
            dialect_of(storage_conn),
            width,
            start_utc,
            end_utc,
            [device_id],
            metric_ids,
        )
    by_metric: dict[int, list[TelemetryPoint]] = {mid: [] for mid in metric_ids}
    for row in rows:
        by_metric[row.metric_id].append(
            TelemetryPoint(t=row.bucket, n=row.n, avg=row.avg, min=row.min, max=row.max)
        )
    series = [
        TelemetrySeries(metric=n, unit=available[n][1], points=by_metric[available[n][0]])
        for n in names
    ]
    return TelemetryResponse(
        device_id=device_id,
        bucket=bucket,
        source=source,
        start=start_utc,
        end=end_utc,
        series=series,
    )
