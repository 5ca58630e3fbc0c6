"""Typed path and query parameters shared by the routes (bounded so the database accepts them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path

from backend.api.errors import ApiError
from backend.api.pagination import MAX_ID

ResourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="numeric id")]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def aware(value: datetime, name: str) -> datetime:
    """``value`` in UTC (naive means UTC) within 1970..2200; :class:`ApiError` 422 otherwise."""
    result = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        result = result.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ApiError(422, "invalid_request", f"{name} is out of range") from None
    if not EARLIEST <= result < LATEST:
        raise ApiError(
            422,
            "invalid_request",
            f"{name} must be between 1970-01-01 and 2200-01-01",
            {"parameter": name},
        )
    return result
