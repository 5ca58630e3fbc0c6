"""One MQTT connection attempt: a fresh paho client per attempt, driven by our own loop.

A fresh client per attempt means paho never holds messages of its own across a reconnect:
after a disconnect everything unacknowledged is re-read from the durable queue, and a
late PUBACK for an old message id cannot be mistaken for a new one.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sdk._config import BrokerUrl, DeviceConfig
from device_sdk.wire.topics import Channel

MQTT5 = MQTTProtocolVersion.MQTTv5
MQTT311 = MQTTProtocolVersion.MQTTv311
PROTOCOL_NAMES = {MQTT5: "MQTTv5", MQTT311: "MQTTv311"}

_UNSUPPORTED_PROTOCOL = frozenset({0x84, 1})  # MQTT 5 reason code / 3.1.1 return code


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message that is not in the durable queue: a command reply, a reported config."""

    channel: Channel
    payload: bytes
    retain: bool


@dataclass(slots=True)
class Flight:
    """One published message waiting for its PUBACK."""

    indexes: range | list[int]
    """Queue indexes it carries (empty for messages that are not in the queue)."""
    sent_at: float
    outgoing: Outgoing | None = None
    """Set for outbox messages, which go back to the outbox if the connection drops."""


@dataclass
class Link:
    """One paho client and its TCP (or TLS) connection."""

    client: mqtt.Client
    broker: BrokerUrl
    protocol: MQTTProtocolVersion
    started: float
    connack_deadline: float
    connected: bool = False
    closed: bool = False
    session_present: bool = False
    error: str | None = None
    refused_protocol: bool = False
    in_flight: dict[int, Flight] = field(default_factory=dict)
    in_flight_entries: int = 0

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES[self.protocol]


class Callbacks:
    """What the link reports to its owner (all called on the I/O thread)."""

    def __init__(
        self,
        on_connected: Callable[[Link], None],
        on_puback: Callable[[Link, int, int, str], None],
        on_message: Callable[[str, bytes], None],
        on_subscribed: Callable[[Link], None],
    ) -> None:
        self.on_connected = on_connected
        self.on_puback = on_puback
        self.on_message = on_message
        self.on_subscribed = on_subscribed


def open_link(
    config: DeviceConfig,
    broker: BrokerUrl,
    protocol: MQTTProtocolVersion,
    will: tuple[str, bytes],
    tls_context: ssl.SSLContext | None,
    callbacks: Callbacks,
) -> Link:
    """Create a client and connect its socket (blocking up to ``connect_timeout_s``).

    The CONNACK arrives later through the owner's loop. Raises ``OSError`` (including
    ``ssl.SSLError`` and timeouts) when the socket cannot be opened.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=config.mqtt_client_id,
        protocol=protocol,
        clean_session=None if protocol == MQTT5 else False,
        reconnect_on_failure=False,
    )
    client.connect_timeout = config.connect_timeout_s
    # We cap what is in flight ourselves (paho reuses ids past 65,535); leave room above it
    # for command replies and state messages.
    client.max_inflight_messages_set(config.max_in_flight + 16)
    if config.username is not None:
        password = config.password.get_secret_value() if config.password is not None else None
        client.username_pw_set(config.username, password)
    if broker.tls:
        context = tls_context or ssl.create_default_context()
        context.sslsocket_class = _ClosingSSLSocket
        client.tls_set_context(context)
    will_topic, will_payload = will
    client.will_set(will_topic, will_payload, qos=1, retain=True)
    now = time.monotonic()
    link = Link(
        client=client,
        broker=broker,
        protocol=protocol,
        started=now,
        connack_deadline=now + config.connect_timeout_s,
    )
    _wire_callbacks(link, callbacks)
    properties: Properties | None = None
    if protocol == MQTT5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = config.session_expiry_s
    try:
        client.connect(
            broker.host,
            broker.port,
            keepalive=config.keepalive_s,
            clean_start=False if protocol == MQTT5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
    except (OSError, ValueError) as exc:
        _close_quietly(client)
        raise OSError(describe_error(exc)) from None
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return link


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails (paho drops the socket without closing it)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _wire_callbacks(link: Link, callbacks: Callbacks) -> None:
    client = link.client

    def on_connect(
        _client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            link.error = f"broker refused the connection: {reason}"
            link.refused_protocol = reason.value in _UNSUPPORTED_PROTOCOL
            link.closed = True
            return
        link.connected = True
        link.session_present = bool(getattr(flags, "session_present", False))
        callbacks.on_connected(link)

    def on_disconnect(
        _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if link.error is None:
            link.error = f"connection lost: {reason}"
        link.closed = True

    def on_publish(
        _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        callbacks.on_puback(link, mid, reason.value, str(reason))

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        callbacks.on_message(message.topic, bytes(message.payload))

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish

    def on_subscribe(
        _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            link.error = f"subscription refused: {', '.join(failed)}"
        callbacks.on_subscribed(link)

    client.on_message = on_message
    client.on_subscribe = on_subscribe


def _close_quietly(client: mqtt.Client) -> None:
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def close_link(link: Link, *, graceful: bool) -> None:
    """Send DISCONNECT when ``graceful`` (the broker then does not publish the will)."""
    if graceful and link.connected and not link.closed:
        try:
            link.client.disconnect()
            link.client.loop_write()
        except (OSError, ValueError):
            pass
    link.closed = True
    _close_quietly(link.client)


def describe_error(exc: BaseException) -> str:
    """A one-line description of a connection error (no secrets: none are in these)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
