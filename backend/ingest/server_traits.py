"""What the database server can do, found once at start-up.

A WebAssembly build of PostgreSQL (PGlite, which carries TimescaleDB) speaks the protocol but
has no ``COPY … FROM STDIN``, one backend for every connection (prepared statements outlive
the connection that made them) and takes one connection at a time. Against such a server the
ingest writes telemetry by multi-row INSERT (:mod:`backend.ingest.row_insert`), turns
prepared statements off and runs its two stages on one connection, one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.ingest.row_insert import TelemetryWrite
from backend.storage.connect import connect
from backend.storage.dialect import Connection


@dataclass(frozen=True)
class ServerTraits:
    """How to talk to the server.

    Attributes:
        telemetry_write: ``copy`` (binary COPY) or ``insert`` (multi-row INSERT).
        webassembly: a WebAssembly build: no prepared statements, one connection at a time.
    """

    telemetry_write: TelemetryWrite = "copy"
    webassembly: bool = False

    @property
    def one_connection(self) -> bool:
        return self.webassembly

    def configure(self, conn: Connection) -> Connection:
        """Set a new connection up for this server (prepared statements off on WebAssembly)."""
        if self.webassembly:
            conn.prepare_threshold = None
            conn.execute("DEALLOCATE ALL")
        return conn


def is_webassembly(conn: Connection) -> bool:
    """Whether the server is a WebAssembly (Emscripten) build of PostgreSQL."""
    row = conn.execute("SELECT version()").fetchone()
    return row is not None and "emscripten" in str(row[0]).lower()


def probe_server(
    database_url: str,
    configured: Literal["auto", "copy", "insert"] = "auto",
    timeout_s: float = 5.0,
) -> ServerTraits:
    """The traits of the server at ``database_url``; ``configured`` overrides the write path.

    Raises:
        ServiceUnavailableError: the database cannot be reached.
    """
    with connect(database_url, timeout_s, autocommit=True) as conn:
        conn.prepare_threshold = None
        webassembly = is_webassembly(conn)
    if configured == "auto":
        return ServerTraits("insert" if webassembly else "copy", webassembly)
    return ServerTraits(configured, webassembly)
