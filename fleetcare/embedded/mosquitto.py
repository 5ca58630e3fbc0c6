"""A ``mosquitto`` broker process with a generated configuration.

Used by ``fleetcare services up`` when a mosquitto binary is on PATH, and by tests that
stop, restart or configure a broker. The queue limits are set deliberately: a default
mosquitto silently drops messages for a subscriber about 1,000 messages behind.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fleetcare.embedded.ports import free_tcp_port
from fleetcare.embedded.process import ListeningProcess
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


class MosquittoBroker(ListeningProcess):
    """One mosquitto process listening on loopback, restartable on the same port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Restarting keeps
    the port and the persistence directory, so persistent sessions survive.
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, config: MosquittoConfig | None = None) -> None:
        self.config = config or MosquittoConfig()
        port = self.config.port or free_tcp_port(self.config.host)
        super().__init__(workdir, self.config.host, port, "mosquitto.log")

    @property
    def url(self) -> str:
        return f"mqtt://{self.config.host}:{self.port}"

    def prepare(self) -> None:
        (self.workdir / "mosquitto.conf").write_text(self.config.render(self.port, self.workdir))

    def command(self) -> list[str]:
        binary = mosquitto_binary()
        if binary is None:
            raise EmbeddedServiceError("mosquitto is not installed (apt-get install mosquitto)")
        return [binary, "-c", str(self.workdir / "mosquitto.conf")]

    def start(self, timeout_s: float = 10.0) -> None:
        if mosquitto_binary() is None:
            raise EmbeddedServiceError("mosquitto is not installed (apt-get install mosquitto)")
        super().start(timeout_s)
