"""Connect to an MQTT broker once to learn whether it is reachable and which protocol it speaks."""

from __future__ import annotations

import secrets
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from fleetcare.errors import ConfigError, ServiceUnavailableError
from fleetcare.redact import redact_url

MqttProtocol = Literal["5", "3.1.1"]
_PROTOCOLS: tuple[tuple[MqttProtocol, MQTTProtocolVersion], ...] = (
    ("5", MQTTProtocolVersion.MQTTv5),
    ("3.1.1", MQTTProtocolVersion.MQTTv311),
)
_TLS_SCHEMES = {"mqtts", "ssl"}
_NOTHING_LISTENS = ("ConnectionRefusedError", "TimeoutError", "gaierror")
_PLAIN_SCHEMES = {"mqtt", "tcp"}


@dataclass(frozen=True)
class BrokerEndpoint:
    """A broker URL taken apart: ``mqtt[s]://[user[:password]@]host[:port]``."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerEndpoint:
        """Raises: ConfigError: the URL is not an MQTT URL."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _TLS_SCHEMES | _PLAIN_SCHEMES or not parts.hostname:
            raise ConfigError([("FLEETCARE_BROKER_URL", f"not an MQTT URL: {redact_url(url)}")])
        tls = scheme in _TLS_SCHEMES
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(
                [("FLEETCARE_BROKER_URL", f"bad port in {redact_url(url)}")]
            ) from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


@dataclass(frozen=True)
class BrokerProbe:
    """What a probe found: the broker answered a CONNECT with ``protocol``."""

    url: str
    protocol: MqttProtocol

    @property
    def supports_mqtt5(self) -> bool:
        return self.protocol == "5"


def _try_connect(
    endpoint: BrokerEndpoint, protocol: MQTTProtocolVersion, timeout_s: float
) -> str | None:
    """Connect once; ``None`` on success, else what went wrong."""
    done = threading.Event()
    outcome: dict[str, str | None] = {"error": "no CONNACK within the timeout"}

    def on_connect(
        client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        outcome["error"] = None if not reason.is_failure else f"refused: {reason}"
        done.set()

    def on_disconnect(
        client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not done.is_set():
            outcome["error"] = f"connection closed before CONNACK ({reason})"
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fleetcare-probe-{secrets.token_hex(4)}",
        protocol=protocol,
    )
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect_timeout = timeout_s
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set_context(ssl.create_default_context())
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=max(5, int(timeout_s) + 5))
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    client.loop_start()
    try:
        done.wait(timeout_s)
        return outcome["error"]
    finally:
        client.disconnect()
        client.loop_stop()


def probe_broker(url: str, timeout_s: float = 5.0) -> BrokerProbe:
    """Connect with MQTT 5, then with 3.1.1, and report the first that the broker accepts.

    Raises:
        ConfigError: ``url`` is not an MQTT URL.
        ServiceUnavailableError: neither protocol got a successful CONNACK; names the redacted
            URL and each attempt.
    """
    endpoint = BrokerEndpoint.from_url(url)
    attempts: list[str] = []
    for name, protocol in _PROTOCOLS:
        error = _try_connect(endpoint, protocol, timeout_s)
        if error is None:
            return BrokerProbe(url=url, protocol=name)
        attempts.append(f"MQTT {name} CONNECT to {endpoint.host}:{endpoint.port}: {error}")
        if error.startswith(_NOTHING_LISTENS):
            break  # nothing listens there: the other protocol will not fare better
    raise ServiceUnavailableError(
        "mqtt broker",
        redact_url(url),
        attempts,
        hint="start the broker or fix FLEETCARE_BROKER_URL (unset it to use an embedded broker)",
    )
