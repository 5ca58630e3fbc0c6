"""Predictions of a device: the latest one and its history; across devices with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel

from backend.api.auth import Principal, require_roles
from backend.api.deps import DbConnection
from backend.api.errors import ApiError, error_responses
from backend.api.pagination import MAX_ID, Page, PageParams, page_params
from backend.api.params import ResourceId, aware
from backend.api.routes.devices import fetch_device
from backend.api.rows import fetch_page
from backend.api.scoping import device_condition

router = APIRouter(tags=["predictions"])

PredictionReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]


class PredictionPublic(BaseModel):
    """What a model said about a device at one time."""

    id: int
    device_id: int
    predicted_at: datetime
    model_version_id: int | None
    window_start: datetime
    window_end: datetime
    horizon_hours: int
    failure_risk: float | None
    rul_hours: float | None
    failure_mode: str | None
    mode_probabilities: dict[str, Any]
    contributions: list[Any]
    anomaly_score: float | None


_COLUMNS = sql.SQL(
    "p.id, p.device_id, p.predicted_at, p.model_version_id, p.window_start, p.window_end,"
    " p.horizon_hours, p.failure_risk, p.rul_hours, p.failure_mode, p.mode_probabilities,"
    " p.contributions, p.anomaly_score FROM predictions p JOIN devices d ON d.id = p.device_id"
)


@router.get(
    "/predictions",
    response_model=Page[PredictionPublic],
    summary="List predictions",
    responses=error_responses(401, 403, 422),
)
def list_predictions(
    conn: DbConnection,
    principal: PredictionReader,
    page: Annotated[PageParams, Depends(page_params)],
    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    model_version_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    failure_mode: Annotated[str | None, Query(max_length=100)] = None,
    min_risk: Annotated[float | None, Query(ge=0, le=1)] = None,
    since: Annotated[datetime | None, Query(description="predicted_at >= since")] = None,
) -> Page[PredictionPublic]:
    """Newest first; filter by device, model version, failure mode, minimum risk, time."""
    scope, params = device_condition(principal)
    query = sql.SQL(
        "SELECT {} WHERE p.id < %(before)s AND {}"
        " AND (%(device_id)s::bigint IS NULL OR p.device_id = %(device_id)s)"
        " AND (%(mv)s::bigint IS NULL OR p.model_version_id = %(mv)s)"
        " AND (%(mode)s::text IS NULL OR p.failure_mode = %(mode)s)"
        " AND (%(risk)s::real IS NULL OR p.failure_risk >= %(risk)s)"
        " AND (%(since)s::timestamptz IS NULL OR p.predicted_at >= %(since)s)"
        " ORDER BY p.id DESC LIMIT %(limit)s"
    ).format(_COLUMNS, scope)
    values = {
        **params,
        "before": page.before_descending(),
        "device_id": device_id,
        "mv": model_version_id,
        "mode": failure_mode,
        "risk": min_risk,
        "since": aware(since, "since") if since is not None else None,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, PredictionPublic, page)


@router.get(
    "/devices/{device_id}/predictions",
    response_model=Page[PredictionPublic],
    summary="Prediction history of a device",
    responses=error_responses(401, 403, 404, 422),
)
def device_predictions(
    conn: DbConnection,
    principal: PredictionReader,
    device_id: ResourceId,
    page: Annotated[PageParams, Depends(page_params)],
    since: Annotated[datetime | None, Query(description="predicted_at >= since")] = None,
    until: Annotated[datetime | None, Query(description="predicted_at < until")] = None,
) -> Page[PredictionPublic]:
    """A device's predictions, newest first."""
    fetch_device(conn, principal, device_id)
    query = sql.SQL(
        "SELECT {} WHERE p.device_id = %(device_id)s AND p.id < %(before)s"
        " AND (%(since)s::timestamptz IS NULL OR p.predicted_at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR p.predicted_at < %(until)s)"
        " ORDER BY p.id DESC LIMIT %(limit)s"
    ).format(_COLUMNS)
    values = {
        "device_id": device_id,
        "before": page.before_descending(),
        "since": aware(since, "since") if since is not None else None,
        "until": aware(until, "until") if until is not None else None,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, PredictionPublic, page)


@router.get(
    "/devices/{device_id}/predictions/latest",
    response_model=PredictionPublic,
    summary="Latest prediction of a device",
    responses=error_responses(401, 403, 404, 422),
)
def latest_prediction(
    conn: DbConnection, principal: PredictionReader, device_id: ResourceId
) -> PredictionPublic:
    """The most recent prediction (by ``predicted_at``); 404 when there is none yet."""
    fetch_device(conn, principal, device_id)
    query = sql.SQL(
        "SELECT {} WHERE p.device_id = %s ORDER BY p.predicted_at DESC, p.id DESC LIMIT 1"
    ).format(_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (device_id,)).fetchone()
    if row is None:
        raise ApiError(
            404, "not_found", f"device {device_id} has no prediction yet", {"device_id": device_id}
        )
    return PredictionPublic.model_validate(row)
