"""FastAPI dependencies shared by the routes: a pooled database connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

Connection = psycopg.Connection[tuple[Any, ...]]


def db_connection(request: Request) -> Iterator[Connection]:
    """A connection from the app's pool, in a transaction.

    Committed when the handler returns normally, rolled back when it raises.
    """
    pool: ConnectionPool[Connection] = request.app.state.pool
    with pool.connection() as conn, conn.transaction():
        yield conn


DbConnection = Annotated[Connection, Depends(db_connection, scope="function")]
