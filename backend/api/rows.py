"""Query results as response models: one row (404 when there is none) or a keyset page."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import dict_row

from backend.api.deps import Connection
from backend.api.errors import not_found
from backend.api.pagination import Page, PageParams, page_of


class Identified(Protocol):
    """A response model keyed by ``id`` (what keyset pages are ordered by)."""

    @property
    def id(self) -> int: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


R = TypeVar("R", bound=Identified)
Query = str | sql.SQL | sql.Composed


def _row_id(row: Identified) -> int:
    return row.id


def fetch_one(
    conn: Connection, query: Query, values: Params, model: type[R], kind: str, ident: int
) -> R:
    """The row ``query`` selects, as ``model``.

    Raises:
        ApiError: 404 naming ``kind`` and ``ident`` when the query selects nothing (the row
            does not exist, or the caller's scope leaves it out).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, values).fetchone()
    if row is None:
        raise not_found(kind, ident)
    return model.model_validate(row)


def fetch_page(
    conn: Connection, query: Query, values: Params, model: type[R], page: PageParams
) -> Page[R]:
    """A page of ``model`` from a keyset query that selects up to ``page.limit + 1`` rows."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = [model.model_validate(r) for r in cur.execute(query, values)]
    return page_of(rows, page, _row_id)
