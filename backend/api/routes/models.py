"""Model versions: list with filters, get one (manifest and evaluation metrics included)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from backend.api.auth import Principal, require_roles
from backend.api.deps import DbConnection
from backend.api.errors import error_responses
from backend.api.pagination import Page, PageParams, page_params
from backend.api.params import ResourceId
from backend.api.rows import fetch_one, fetch_page

router = APIRouter(tags=["models"])

ModelReader = Annotated[Principal, Depends(require_roles("admin", "viewer", "csm", "field"))]
ModelStatus = Literal["candidate", "champion", "retired"]


class ModelVersionPublic(BaseModel):
    """A trained model: its manifest (features, window, data hash) and its metrics."""

    id: int
    name: str
    version: str
    kind: str
    status: ModelStatus
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    artifact_uri: str
    artifact_sha256: str
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None


_SELECT = (
    "SELECT id, name, version, kind, status, manifest, metrics, artifact_uri, artifact_sha256,"
    " created_at, promoted_at, retired_at FROM model_versions"
)


@router.get(
    "/model-versions",
    response_model=Page[ModelVersionPublic],
    summary="List model versions",
    responses=error_responses(401, 403, 422),
)
def list_model_versions(
    conn: DbConnection,
    _: ModelReader,
    page: Annotated[PageParams, Depends(page_params)],
    name: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    status: ModelStatus | None = None,
) -> Page[ModelVersionPublic]:
    """Newest first, filtered by model name, kind and status."""
    query = (
        _SELECT + " WHERE id < %(before)s"
        " AND (%(name)s::text IS NULL OR name = %(name)s)"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(status)s::text IS NULL OR status = %(status)s)"
        " ORDER BY id DESC LIMIT %(limit)s"
    )
    values = {
        "before": page.before_descending(),
        "name": name,
        "kind": kind,
        "status": status,
        "limit": page.limit + 1,
    }
    return fetch_page(conn, query, values, ModelVersionPublic, page)


@router.get(
    "/model-versions/{model_version_id}",
    response_model=ModelVersionPublic,
    summary="Get a model version",
    responses=error_responses(401, 403, 404, 422),
)
def get_model_version(
    conn: DbConnection, _: ModelReader, model_version_id: ResourceId
) -> ModelVersionPublic:
    """One model version."""
    return fetch_one(
        conn,
        _SELECT + " WHERE id = %s",
        (model_version_id,),
        ModelVersionPublic,
        "model version",
        model_version_id,
    )
