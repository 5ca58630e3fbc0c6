"""A server child process that listens on a TCP port: start, stop, kill, restart.

The embedded brokers (mosquitto, amqtt) are such processes; they differ only in the command
that starts them. Restarting keeps the port, so clients reconnect to the same address.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from fleetcare.embedded.ports import wait_for_port
from fleetcare.errors import EmbeddedServiceError


class ListeningProcess:
    """Base class: a child process that serves on ``host:port``, with its log in ``workdir``.

    Subclasses implement :meth:`command` (and may override :meth:`prepare`).
    """

    name = "server"

    def __init__(self, workdir: Path, host: str, port: int, log_name: str) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = workdir / log_name

    def command(self) -> list[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write whatever the command needs (configuration files); called before each start."""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the process and wait until it accepts connections.

        Raises:
            EmbeddedServiceError: it did not listen in time (the message holds its log).
        """
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if not wait_for_port(self.host, self.port, timeout_s) or not self.running:
            self.kill()
            raise EmbeddedServiceError(
                f"{self.name} did not listen on {self.host}:{self.port} within "
                f"{timeout_s:.0f} s; log:\n{self.log_text()[-2000:]}"
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), killing after ``timeout_s``. Idempotent."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
