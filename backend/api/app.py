"""The FastAPI application factory."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import psycopg
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from backend.api.deps import DbConnection
from backend.api.errors import document_common_errors, error_responses, install_error_handlers
from backend.api.query_strictness import reject_repeated_query_params
from backend.downlink.settings import DownlinkSettings
from backend.settings import BackendSettings
from fleetcare import __version__

ROUTER_MODULES: tuple[str, ...] = (
    "backend.api.routes.devices",
    "backend.api.routes.commands",
    "backend.api.routes.telemetry",
    "backend.api.routes.predictions",
    "backend.api.routes.models",
    "backend.api.routes.provisioning",
    "backend.api.routes.users",
    "backend.api.routes.care",
    "backend.api.routes.accounts",
    "backend.console.pages",
)

TAGS_METADATA: list[dict[str, Any]] = [
    {"name": "meta", "description": "Liveness of the API and its database."},
    {"name": "devices", "description": "Devices, their filters and their twin's desired config."},
    {"name": "telemetry", "description": "Bucketed telemetry queries served from rollups."},
    {"name": "predictions", "description": "Failure risk, RUL and failure mode per device."},
    {"name": "models", "description": "Model versions (candidate, champion, retired)."},
    {"name": "provisioning", "description": "Register devices, issue credentials, broker config."},
    {"name": "users", "description": "Users and their API keys (admin only)."},
    {"name": "accounts", "description": "Accounts, the customer 360 view, health and segments."},
    {"name": "care", "description": "Tickets, alerts, care rules, webhooks and the care report."},
]

DESCRIPTION = """\
fleetcare's HTTP API: devices, telemetry, predictions, accounts, tickets and alerts.

Every request carries an API key (`Authorization: Bearer fc_...` or `X-API-Key`). What a key
may see depends on its user's role (admin, csm, field, viewer, provisioner). Errors share one
body: `{"error": {"code": "...", "message": "...", "details": {...}}}`. Lists are paginated
with `limit` and an opaque `cursor` (`next_cursor` of the previous page).
"""


class HealthStatus(BaseModel):
    """The API answers and its database too."""

    status: str
    database: str


meta_router = APIRouter(tags=["meta"])


@meta_router.get(
    "/health", response_model=HealthStatus, responses=error_responses(500), summary="Liveness"
)
def health(conn: DbConnection) -> HealthStatus:
    """Answers ``ok`` when the API and its database respond (no key needed)."""
    conn.execute("SELECT 1")
    return HealthStatus(status="ok", database="ok")


#: How long a request waits for a database connection before the API answers 503.
POOL_WAIT_S = 5.0


def open_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 16, wait_s: float = POOL_WAIT_S
) -> ConnectionPool[Any]:
    """A pool of connections to ``database_url`` (not yet opened).

    Each connection is checked before a request gets it, so that after the database
    restarted a request gets a fresh connection instead of the dead one it left; while the
    database is away a request waits at most ``wait_s`` and is answered 503.
    """
    return ConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=wait_s,
        check=ConnectionPool.check_connection,
        kwargs={"autocommit": False},
        connection_class=psycopg.Connection,
        name="fleetcare-api",
    )


def operation_id(route: APIRoute) -> str:
    """Stable operation ids for client generators: ``<tag>_<function name>``."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


def create_app(
    settings: BackendSettings | None = None, *, pool: ConnectionPool[Any] | None = None
) -> FastAPI:
    """Build the API. With ``pool`` the caller owns it; otherwise the app opens and closes one.

    Raises:
        ValueError: neither ``pool`` nor ``settings.database_url`` says where the database is.
    """
    settings = settings or BackendSettings()
    owned_pool: ConnectionPool[Any] | None = None
    if pool is None:
        if settings.database_url is None:
            raise ValueError(
                "the API needs a database: set FLEETCARE_DATABASE_URL or start the embedded one"
            )
        owned_pool = open_pool(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned_pool is not None:
            owned_pool.open(wait=False)
        try:
            yield
        finally:
            if owned_pool is not None:
                await anyio.to_thread.run_sync(owned_pool.close)

    app = FastAPI(
        title="fleetcare API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS_METADATA,
        lifespan=lifespan,
        dependencies=[Depends(reject_repeated_query_params)],
        generate_unique_id_function=operation_id,
    )
    app.state.pool = pool if pool is not None else owned_pool
    app.state.topic_root = settings.topic_root
    app.state.command_ttl_s = DownlinkSettings().command_ttl_s
    install_error_handlers(app)
    app.include_router(meta_router)
    for module_path in ROUTER_MODULES:
        module = importlib.import_module(module_path)
        app.include_router(module.router)
    _document_errors_in_openapi(app)
    return app


def _document_errors_in_openapi(app: FastAPI) -> None:
    """Generate the spec once, with the common error responses added to every operation."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_common_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
