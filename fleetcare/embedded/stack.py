"""The services an application needs, started embedded where none is configured.

``ServiceStack`` reads ``database_url``/``broker_url``/``data_dir`` from the settings: a URL
that is set is used as it is; one that is unset gets an embedded service in the data
directory (``postgres/`` and ``broker/``). On exit, including Ctrl-C, it stops exactly what
it started, newest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from fleetcare.embedded.broker import EmbeddedBroker, create_embedded_broker
from fleetcare.embedded.postgres import EmbeddedPostgres
from fleetcare.errors import EmbeddedServiceError

Service = Literal["database", "broker"]
ALL_SERVICES: tuple[Service, ...] = ("database", "broker")


class StackSettings(Protocol):
    """The settings a stack reads (``backend.settings.BackendSettings`` has them)."""

    @property
    def database_url(self) -> str | None: ...

    @property
    def broker_url(self) -> str | None: ...

    @property
    def data_dir(self) -> Path: ...


class ServiceStack:
    """Resolve (and start where needed) the database and the MQTT broker.

    Args:
        settings: where the services are; ``None`` URLs mean "start one embedded".
        services: which services the caller needs (``db migrate`` needs no broker).
        announce: called with one line per service the stack starts, e.g.
            ``embedded MQTT broker (mosquitto 2.0.11) at mqtt://127.0.0.1:40123``.

    The stack is a context manager that refuses re-entry while open; it can be reused after
    it has been closed.
    """

    def __init__(
        self,
        settings: StackSettings,
        services: Iterable[Service] = ALL_SERVICES,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._services = frozenset(services)
        self._announce = announce or (lambda line: None)
        self._exit_stack: ExitStack | None = None
        self._database_url: str | None = None
        self._broker_url: str | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None

    @property
    def database_url(self) -> str:
        """The database URL to connect to (configured, or the embedded ``fleetcare`` database)."""
        if self._database_url is None:
            raise EmbeddedServiceError(
                "the service stack has no database (not started, or not requested)"
            )
        return self._database_url

    @property
    def broker_url(self) -> str:
        """The MQTT URL to connect to (configured, or the embedded broker's)."""
        if self._broker_url is None:
            raise EmbeddedServiceError(
                "the service stack has no broker (not started or not requested)"
            )
        return self._broker_url

    @property
    def broker_supports_mqtt5(self) -> bool | None:
        """MQTT 5 support of an embedded broker; ``None`` for a configured one (not probed)."""
        return self.broker.supports_mqtt5 if self.broker is not None else None

    @property
    def started(self) -> list[str]:
        """The services this stack started itself (``database``, ``broker``)."""
        names: list[str] = []
        if self.postgres is not None:
            names.append("database")
        if self.broker is not None:
            names.append("broker")
        return names

    def start(self) -> None:
        """Start the embedded services that are needed and not configured.

        Raises:
            EmbeddedServiceError: one could not start; those already started are stopped.
        """
        if self._exit_stack is not None:
            raise EmbeddedServiceError("the service stack is already started")
        with ExitStack() as stack:
            if "database" in self._services:
                self._database_url = self._settings.database_url or self._start_postgres(stack)
            if "broker" in self._services:
                self._broker_url = self._settings.broker_url or self._start_broker(stack)
            self._exit_stack = stack.pop_all()

    def _data_subdir(self, name: str) -> Path:
        path = self._settings.data_dir.expanduser() / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServiceError(
                f"cannot create the data directory {path.parent}: {exc.strerror or exc} "
                "(set FLEETCARE_DATA_DIR to a writable directory)"
            ) from None
        return path

    def _start_postgres(self, stack: ExitStack) -> str:
        postgres = EmbeddedPostgres(self._data_subdir("postgres"))
        stack.callback(self._forget_postgres)
        postgres.start()
        stack.callback(postgres.stop)
        self.postgres = postgres
        shared = ", already running: shared" if postgres.shared else ""
        self._announce(
            f"embedded PostgreSQL {postgres.server_version} at {postgres.data_dir} "
            f"(socket {postgres.socket_dir}{shared})"
        )
        return postgres.fleetcare_url

    def _forget_postgres(self) -> None:
        self.postgres = None

    def _start_broker(self, stack: ExitStack) -> str:
        broker = create_embedded_broker(self._data_subdir("broker"))
        stack.callback(self._forget_broker)
        broker.start()
        stack.callback(broker.stop)
        self.broker = broker
        mqtt = "MQTT 5" if broker.supports_mqtt5 else "MQTT 3.1.1 only"
        self._announce(f"embedded MQTT broker ({broker.description}, {mqtt}) at {broker.url}")
        return broker.url

    def _forget_broker(self) -> None:
        self.broker = None

    def stop(self) -> None:
        """Stop what this stack started, newest first. Idempotent."""
        stack, self._exit_stack = self._exit_stack, None
        self._database_url = None
        self._broker_url = None
        if stack is not None:
            stack.close()

    def __enter__(self) -> ServiceStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
