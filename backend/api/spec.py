"""The OpenAPI document, built without a database (for ``fleetcare api openapi``)."""

from __future__ import annotations

from typing import Any

from backend.api.app import create_app
from backend.settings import BackendSettings

_NO_DATABASE = "postgresql://unused@127.0.0.1:1/unused"


def openapi_spec() -> dict[str, Any]:
    """The complete spec: every router in ``ROUTER_MODULES``, security schemes, error bodies."""
    app = create_app(BackendSettings(database_url=_NO_DATABASE))
    return app.openapi()
