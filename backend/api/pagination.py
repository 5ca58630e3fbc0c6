"""Keyset pagination on ``id`` with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from backend.api.errors import ApiError

T = TypeVar("T")

_CURSOR_PREFIX = "id:"
MAX_ID = 2**63 - 1


class Page(BaseModel, Generic[T]):
    """One page of results; pass ``next_cursor`` as ``cursor`` to get the next one."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="opaque cursor of the next page; null on the last page"
    )


@dataclass(frozen=True)
class PageParams:
    """The page asked for: at most ``limit`` items after the cursor's position."""

    limit: int
    after_id: int | None

    def after_ascending(self) -> int:
        """The lower bound for ``id > %s ORDER BY id``."""
        return self.after_id if self.after_id is not None else 0

    def before_descending(self) -> int:
        """The upper bound for ``id < %s ORDER BY id DESC``."""
        return self.after_id if self.after_id is not None else MAX_ID


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor stands for; :class:`ApiError` 422 when it was not made here."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        value = int(text[len(_CURSOR_PREFIX) :])
        if not 0 <= value <= MAX_ID:
            raise ValueError(text)
    except (ValueError, UnicodeError, binascii.Error):
        raise ApiError(422, "invalid_request", "invalid cursor", {"cursor": cursor[:100]}) from None
    return value


def page_params(
    limit: int = Query(50, ge=1, le=500, description="items per page, 1-500"),
    cursor: str | None = Query(
        None, max_length=200, description="next_cursor of the previous page"
    ),
) -> PageParams:
    """FastAPI dependency reading ``limit`` and ``cursor``."""
    return PageParams(limit=limit, after_id=None if cursor is None else decode_cursor(cursor))


def page_of(rows: Sequence[T], params: PageParams, id_of: Callable[[T], int]) -> Page[T]:
    """Build a page from up to ``limit + 1`` rows fetched in keyset order."""
    items = list(rows[: params.limit])
    more = len(rows) > params.limit
    return Page[T](items=items, next_cursor=encode_cursor(id_of(items[-1])) if more else None)
