"""Choose and start the embedded MQTT broker: mosquitto when installed, amqtt otherwise.

``FLEETCARE_EMBEDDED_BROKER=mosquitto|amqtt`` forces one (forcing mosquitto where it is not
installed is an error, not a silent fallback).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from fleetcare.embedded.amqtt_broker import AmqttBroker, amqtt_version
from fleetcare.embedded.mosquitto import MosquittoBroker, mosquitto_binary
from fleetcare.errors import ConfigError, EmbeddedServiceError

BROKER_CHOICE_ENV = "FLEETCARE_EMBEDDED_BROKER"
BrokerKind = Literal["mosquitto", "amqtt"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("mosquitto", "amqtt")


@runtime_checkable
class BrokerProcess(Protocol):
    """What both broker process classes offer."""

    @property
    def url(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def start(self, timeout_s: float = ...) -> None: ...

    def stop(self, timeout_s: float = ...) -> None: ...

    def kill(self) -> None: ...


@dataclass
class EmbeddedBroker:
    """A started (or startable) embedded broker and what a client needs to know about it.

    Attributes:
        kind: ``mosquitto`` or ``amqtt``.
        version: the broker's version when it could be found, e.g. ``2.0.11``.
        supports_mqtt5: whether clients may connect with MQTT 5 (mosquitto yes, amqtt no).
        process: the broker process itself, for restart/kill in tests.
    """

    kind: BrokerKind
    version: str | None
    process: BrokerProcess

    @property
    def supports_mqtt5(self) -> bool:
        return self.kind == "mosquitto"

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def description(self) -> str:
        """e.g. ``mosquitto 2.0.11``."""
        return f"{self.kind} {self.version}" if self.version else self.kind

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()


def mosquitto_version(binary: str) -> str | None:
    """The version a mosquitto binary reports (``mosquitto -h`` prints it), or ``None``."""
    try:
        result = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else None


def choose_broker_kind(environ: dict[str, str] | None = None) -> BrokerKind:
    """The broker kind to start: the forced one, else mosquitto when installed, else amqtt.

    Raises:
        ConfigError: ``FLEETCARE_EMBEDDED_BROKER`` holds something other than a known kind.
        EmbeddedServiceError: neither broker is available, or the forced one is not installed.
    """
    env = os.environ if environ is None else environ
    forced = env.get(BROKER_CHOICE_ENV, "").strip().lower()
    if forced and forced not in BROKER_KINDS:
        raise ConfigError([(BROKER_CHOICE_ENV, f"must be mosquitto or amqtt, got {forced!r}")])
    if forced == "mosquitto" or (not forced and mosquitto_binary() is not None):
        if mosquitto_binary() is None:
            raise EmbeddedServiceError(
                f"{BROKER_CHOICE_ENV}=mosquitto but mosquitto is not installed "
                "(apt-get install mosquitto, or unset it to use amqtt)"
            )
        return "mosquitto"
    if amqtt_version() is None:
        raise EmbeddedServiceError(
            "no embedded MQTT broker available: install mosquitto or the amqtt package"
        )
    return "amqtt"


def create_embedded_broker(workdir: Path, kind: BrokerKind | None = None) -> EmbeddedBroker:
    """An embedded broker of ``kind`` (:func:`choose_broker_kind` when ``None``), not started."""
    chosen = kind or choose_broker_kind()
    if chosen == "mosquitto":
        binary = mosquitto_binary()
        if binary is None:
            raise EmbeddedServiceError("mosquitto is not installed (apt-get install mosquitto)")
        return EmbeddedBroker("mosquitto", mosquitto_version(binary), MosquittoBroker(workdir))
    return EmbeddedBroker("amqtt", amqtt_version(), AmqttBroker(workdir))


def start_embedded_broker(workdir: Path, kind: BrokerKind | None = None) -> EmbeddedBroker:
    """Create and start an embedded broker with its files (config, log, persistence) in ``workdir``.

    Raises:
        EmbeddedServiceError: no broker could be started.
    """
    broker = create_embedded_broker(workdir, kind)
    broker.start()
    return broker
