"""A ``mosquitto`` broker process with a generated configuration.

Used by ``fleetcare services up`` when a mosquitto binary is on PATH, and by tests that
stop, restart or configure a broker. The queue limits are set deliberately: a default
mosquitto silently drops messages for a subscriber about 1,000 messages behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from fleetcare.embedded.ports import free_tcp_port, wait_for_port
from fleetcare.errors import EmbeddedServiceError


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` executable, or ``None`` when it is not installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass(frozen=True)
class MosquittoConfig:
    """What goes into the generated ``mosquitto.conf``.

    Attributes:
        max_queued_messages: per-client queue bound for QoS 1/2 messages while the client
            is offline or behind. Beyond it mosquitto drops silently, so it is set far above
            the default 1000; ``0`` means unbounded and is refused here.
        max_queued_bytes: byte bound of the same queue (0 = no byte bound).
        persistence: keep retained messages, subscriptions and queued messages across restarts.
        password_file / acl_file: enable authentication and per-topic authorisation.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_queued_messages: int = 2_000_000
    max_queued_bytes: int = 0
    max_inflight_messages: int = 100
    persistence: bool = True
    autosave_interval_s: int = 1
    allow_anonymous: bool = True
    password_file: Path | None = None
    acl_file: Path | None = None
    extra_lines: tuple[str, ...] = field(default_factory=tuple)

    def render(self, port: int, data_dir: Path) -> str:
        if self.max_queued_messages <= 0:
            raise ValueError("max_queued_messages must be a positive bound")
        lines = [
            f"listener {port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "persistent_client_expiration 7d",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0 and not any(line.startswith("user ") for line in self.extra_lines):
            # Started as root, mosquitto switches to the `mosquitto` user, which cannot read
            # files in a private (0700) work directory: persistence and password files fail.
            lines.append("user root")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {data_dir}/",
                f"autosave_interval {self.autosave_interval_s}",
            ]
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        lines.extend(self.extra_lines)
        return "\n".join(lines) + "\n"


class MosquittoBroker:
    """One mosquitto process listening on loopback, restartable on the same port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Restarting keeps
    the port and the persistence directory, so persistent sessions survive.
    """

    def __init__(self, workdir: Path, config: MosquittoConfig | None = None) -> None:
        self.config = config or MosquittoConfig()
        self.workdir = workdir
        self.port = self.config.port or free_tcp_port(self.config.host)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.config.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = 10.0) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise EmbeddedServiceError("mosquitto is not installed (apt-get install mosquitto)")
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf_path = self.workdir / "mosquitto.conf"
        conf_path.write_text(self.config.render(self.port, self.workdir))
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            [binary, "-c", str(conf_path)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        if not wait_for_port(self.config.host, self.port, timeout_s):
            self.kill()
            tail = self._log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedServiceError(
                f"mosquitto did not listen on {self.config.host}:{self.port} "
                f"within {timeout_s:.0f} s; log:\n{tail}"
            )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: persistence is saved), killing after ``timeout_s``."""
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

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
