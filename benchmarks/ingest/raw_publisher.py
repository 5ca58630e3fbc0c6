"""A lean load generator: MQTT 3.1.1 QoS 1 PUBLISH packets written straight to a socket.

The benchmark's devices share the 2 cores with the ingest they feed. paho-mqtt spends about
256 µs of CPU per 50-reading batch here (packet building, locks, callbacks in Python, measured
with ``getrusage`` over 10,000 messages); this publisher writes each packet with one
``sendall`` and reads the broker's PUBACKs in a thread, so the CPU the live phases measure
goes to the broker, the ingest and the database rather than to the load generator.

Same contract as :class:`backend.ingest.loadgen.FleetPublisher` for the benchmark: QoS 1,
at most ``max_in_flight`` messages unacknowledged, ``wait_acked`` until the broker took
every one. No reconnect and no persistent session: the benchmark never restarts the broker
under it (the fault tests use the SDK and ``FleetPublisher``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

__all__ = ["RawMqttPublisher", "encode_remaining_length"]

_CONNECT = 0x10
_CONNACK = 0x20
_PUBLISH_QOS1 = 0x32
_PUBACK = 0x40


def encode_remaining_length(length: int) -> bytes:
    """MQTT's variable-length integer (1 to 4 bytes)."""
    out = bytearray()
    while True:
        digit, length = length % 128, length // 128
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _utf8_field(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class RawMqttPublisher:
    """Publishes QoS 1 messages over one MQTT 3.1.1 connection without a client library.

    Args:
        host, port: the broker.
        client_id: the MQTT client id (clean session).
        max_in_flight: most messages published and not yet acknowledged.
    """

    def __init__(self, host: str, port: int, client_id: str, max_in_flight: int = 1000) -> None:
        if not 1 <= max_in_flight < 65_535:
            raise ValueError("max_in_flight must be between 1 and 65,534 (MQTT packet ids)")
        self._address = (host, port)
        self._client_id = client_id
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}  # packet id -> readings
        self._next_id = 0
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._error: BaseException | None = None
        self.published = 0
        self.acked_messages = 0
        self.acked_readings = 0

    def connect(self, timeout_s: float = 10.0) -> None:
        sock = socket.create_connection(self._address, timeout=timeout_s)
        body = _utf8_field("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0)  # clean, no keepalive
        body += _utf8_field(self._client_id)
        sock.sendall(bytes([_CONNECT]) + encode_remaining_length(len(body)) + body)
        connack = _read_exactly(sock, 4)
        if connack[0] != _CONNACK or connack[3] != 0:
            sock.close()
            raise ConnectionError(f"broker refused the connection (CONNACK {connack.hex()})")
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_acks, name="raw-mqtt-acks", daemon=True)
        self._reader.start()

    def publish(self, topic: str, payload: bytes, readings: int) -> None:
        """Send one QoS 1 message; blocks while ``max_in_flight`` are unacknowledged."""
        if self._sock is None:
            raise RuntimeError("not connected")
        self._slots.acquire()
        if self._error is not None:
            raise ConnectionError("the broker connection failed") from self._error
        with self._lock:
            self._next_id = self._next_id % 65_535 + 1
            packet_id = self._next_id
            self._in_flight[packet_id] = readings
        topic_field = _utf8_field(topic)
        length = len(topic_field) + 2 + len(payload)
        header = bytes([_PUBLISH_QOS1]) + encode_remaining_length(length) + topic_field
        self._sock.sendall(header + struct.pack("!H", packet_id) + payload)
        self.published += 1

    def wait_acked(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._in_flight:
                    return True
            if self._error is not None:
                return False
            time.sleep(0.02)
        return False

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"\xe0\x00")  # DISCONNECT
            self._sock.close()

    def _read_acks(self) -> None:
        sock = self._sock
        assert sock is not None
        buffer = bytearray()
        try:
            while True:
                data = sock.recv(65_536)
                if not data:
                    raise ConnectionError("the broker closed the connection")
                buffer += data
                consumed = _parse_packets(buffer, self._on_packet)
                del buffer[:consumed]
        except (OSError, ConnectionError) as exc:
            self._error = exc
            # Wake a publisher blocked on a full window so that it sees the error.
            with self._lock:
                waiting = len(self._in_flight)
            for _ in range(waiting):
                try:
                    self._slots.release()
                except ValueError:
                    break

    def _on_packet(self, kind: int, body: bytes) -> None:
        if kind & 0xF0 != _PUBACK:
            return
        (packet_id,) = struct.unpack_from("!H", body)
        with self._lock:
            readings = self._in_flight.pop(packet_id, None)
            if readings is None:
                return
            self.acked_messages += 1
            self.acked_readings += readings
        self._slots.release()


def _parse_packets(buffer: bytearray, on_packet: Callable[[int, bytes], None]) -> int:
    """Hand every complete packet in ``buffer`` to ``on_packet``; the bytes consumed."""
    position = 0
    size = len(buffer)
    while position + 2 <= size:
        kind = buffer[position]
        length = multiplier = 0
        cursor = position + 1
        while True:
            if cursor >= size:
                return position
            byte = buffer[cursor]
            length += (byte & 0x7F) << multiplier
            multiplier += 7
            cursor += 1
            if not byte & 0x80:
                break
        if cursor + length > size:
            return position
        on_packet(kind, bytes(buffer[cursor : cursor + length]))
        position = cursor + length
    return position


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data
