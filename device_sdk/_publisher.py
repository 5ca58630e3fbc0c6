"""The I/O thread: connects, publishes the durable queue in batches, handles acknowledgements.

One thread owns paho (paho is not thread-safe); everything else talks to it through the
durable queue, a bounded outbox and a wake-up socket. Per loop turn it:

1. (re)connects when needed: exponential backoff with jitter, failover across the broker
   URLs, MQTT 5 first and 3.1.1 for a broker that refuses 5;
2. reads batches from the queue (by size, or when the oldest waited ``batch_linger_s``)
   and publishes them with QoS 1, at most ``max_in_flight`` messages unacknowledged;
3. acknowledges entries in the queue only on their PUBACK. After a disconnect it rewinds
   the queue and sends every unacknowledged entry again (the backend deduplicates);
4. ``fdatasync``s the queue every ``fsync_interval_s``, checkpoints acknowledgements, and
   publishes the retained ``state`` message every ``state_interval_s``.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion

from device_sdk._config import DeviceConfig, Durability
from device_sdk._connection import (
    MQTT5,
    MQTT311,
    Callbacks,
    Flight,
    Link,
    Outgoing,
    close_link,
    open_link,
)
from device_sdk.backoff import FIRST_FAILURE, NO_MATCHING_SUBSCRIBERS, Backoff, HoldOff
from device_sdk.queue import DurableQueue, QueueItem
from device_sdk.wire.codec import encode_batch
from device_sdk.wire.payloads import BatchKind
from device_sdk.wire.topics import Channel, build_topic

_log = logging.getLogger("device_sdk")

TAG_KINDS: dict[int, BatchKind] = {1: BatchKind.TELEMETRY, 2: BatchKind.USAGE, 3: BatchKind.EVENTS}
KIND_TAGS: dict[BatchKind, int] = {kind: tag for tag, kind in TAG_KINDS.items()}
_KIND_CHANNELS = {
    BatchKind.TELEMETRY: Channel.TELEMETRY,
    BatchKind.USAGE: Channel.USAGE,
    BatchKind.EVENTS: Channel.EVENTS,
}
_OUTBOX_LIMIT = 1000
_CHECKPOINT_INTERVAL_S = 0.1
_STABLE_SESSION_S = 10.0


class Publisher:
    """Runs the I/O thread. Public methods are thread-safe; the rest runs on the thread."""

    def __init__(
        self,
        config: DeviceConfig,
        queue: DurableQueue,
        *,
        boot: str,
        tls_context: ssl.SSLContext | None,
        state_payload: Callable[[bool], bytes],
        on_message: Callable[[Channel, bytes], None],
        on_acked: Callable[[], None],
        on_drops: Callable[[], None],
    ) -> None:
        self._config = config
        self._queue = queue
        self._boot = boot
        self._tls_context = tls_context
        self._state_payload = state_payload
        self._on_message = on_message
        self._on_acked = on_acked
        self._on_drops = on_drops
        self._brokers = config.brokers
        self._topics = {c: build_topic(config.device_id, c, config.topic_root) for c in Channel}
        self._downlink = {
            self._topics[Channel.COMMANDS]: Channel.COMMANDS,
            self._topics[Channel.CONFIG_DESIRED]: Channel.CONFIG_DESIRED,
        }
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        # Batches the broker had no subscriber for (PUBACK 0x10): held, then read again.
        self._hold = HoldOff(config.reconnect_min_s, config.reconnect_max_s)
        self._broker_index = 0
        self._protocols: dict[str, MQTTProtocolVersion] = {}
        self._confirmed: set[str] = set()
        self._link: Link | None = None
        self._next_attempt = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sleeping = False
        self._reserve_requested = False
        self._stop_requested = False
        self._stop_deadline = 0.0
        self._flushing = 0
        self._flush_lock = threading.Lock()
        # Idle wake-ups: often enough for keepalive pings, rare enough to let a device sleep.
        self._max_poll_s = min(5.0, config.keepalive_s / 4)
        self._outbox: deque[Outgoing] = deque()
        self._outbox_lock = threading.Lock()
        self._linger_since: float | None = None
        now = time.monotonic()
        self._next_fsync = now + config.fsync_interval_s
        self._next_checkpoint = now + _CHECKPOINT_INTERVAL_S
        self._next_state = now
        self._connected = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"device-sdk-io-{config.device_id}", daemon=True
        )
        # counters (written by the I/O thread only)
        self.sent = 0
        self.sessions = 0
        self.connect_failures = 0
        self.rejected = 0
        self.unrouted = 0
        """Batches the broker acknowledged with "no matching subscribers" (held, sent again)."""
        self.outbox_dropped = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ public, any thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver what can be delivered within ``timeout`` seconds, then disconnect."""
        self._stop_deadline = time.monotonic() + max(0.0, timeout)
        self._stop_requested = True
        self._wake()
        self._thread.join(timeout + self._config.connect_timeout_s + 5.0)
        if self._thread.is_alive():  # pragma: no cover - paho blocked beyond its timeouts
            _log.error("device_sdk I/O thread did not stop in time")
            return
        self._wake_r.close()
        self._wake_w.close()

    def notify(self) -> None:
        """Called after an append: wake the thread if it sleeps with nothing to send, or
        if the queue's index reservation runs low (so ``append`` need not fsync it)."""
        if self._sleeping:
            self._sleeping = False
            self._wake()
        elif self._queue.reservation_low and not self._reserve_requested:
            self._reserve_requested = True
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def send(self, message: Outgoing) -> None:
        """Queue a non-durable message; the oldest is dropped (and counted) past 1,000."""
        with self._outbox_lock:
            if len(self._outbox) >= _OUTBOX_LIMIT:
                self._outbox.popleft()
                self.outbox_dropped += 1
            self._outbox.append(message)
        self._sleeping = False
        self._wake()

    def begin_flush(self) -> None:
        with self._flush_lock:
            self._flushing += 1
        self._sleeping = False
        self._wake()

    def end_flush(self) -> None:
        with self._flush_lock:
            self._flushing = max(0, self._flushing - 1)

    def wait_connected(self, timeout: float) -> bool:
        """Wait for a session whose down-link subscriptions are acknowledged."""
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        link = self._link
        return link is not None and link.connected and not link.closed

    @property
    def link_info(self) -> tuple[str | None, str | None]:
        """``(broker url, protocol name)`` of the live session, if any."""
        link = self._link
        if link is None or not link.connected or link.closed:
            return None, None
        return link.broker.url, link.protocol_name

    @property
    def in_flight_entries(self) -> int:
        link = self._link
        return link.in_flight_entries if link is not None else 0

    @property
    def reconnects(self) -> int:
        return max(0, self.sessions - 1)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            try:
                if self._turn():
                    break
            except Exception as exc:  # top level of the thread: keep publishing
                _log.exception("device_sdk I/O loop error; reconnecting")
                self.last_error = f"internal error: {type(exc).__name__}: {exc}"
                if self._link is not None:
                    close_link(self._link, graceful=False)
                    self._after_close(self._link, time.monotonic())
                time.sleep(0.1)
        try:
            self._shutdown()
        except Exception:  # top level of the thread
            _log.exception("device_sdk I/O thread shutdown error")

    def _turn(self) -> bool:
        """One loop turn; ``True`` when the thread should exit."""
        now = time.monotonic()
        link = self._link
        if self._stop_requested and self._drained(link, now):
            return True
        if link is None:
            if now >= self._next_attempt:
                self._attempt(now)
            else:
                self._poll(None, min(self._next_attempt - now, self._timers_due(now)))
            self._housekeeping(time.monotonic())
            return False
        if link.closed:
            self._after_close(link, now)
            return False
        if not link.connected and now > link.connack_deadline:
            link.error = "no CONNACK within connect_timeout_s"
            close_link(link, graceful=False)
            return False
        if link.connected:
            if self._queue.has_drops:
                self._on_drops()
            self._pump(link, now)
        self._poll(link, self._timeout(link, now))
        self._housekeeping(time.monotonic())
        return False

    def _drained(self, link: Link | None, now: float) -> bool:
        if now >= self._stop_deadline or link is None or not link.connected or link.closed:
            return True
        return not link.in_flight and not self._outbox and self._queue.stats().items == 0

    # ------------------------------------------------------------------ connecting

    def _attempt(self, now: float) -> None:
        broker = self._brokers[self._broker_index % len(self._brokers)]
        default = MQTT311 if self._config.protocol == "3.1.1" else MQTT5
        protocol = self._protocols.get(broker.url, default)
        will = (self._topics[Channel.STATE], self._state_payload(False))
        callbacks = Callbacks(
            on_connected=self._on_connected,
            on_subscribed=self._on_subscribed,
            on_puback=self._on_puback,
            on_message=self._on_mqtt_message,
        )
        try:
            self._link = open_link(
                self._config, broker, protocol, will, self._tls_context, callbacks
            )
        except OSError as exc:
            self._failed(f"{broker.url}: {exc}", now)

    def _failed(self, error: str, now: float) -> None:
        self.connect_failures += 1
        self.last_error = error
        self._broker_index += 1
        delay = self._backoff.next_delay()
        self._next_attempt = now + delay
        level = logging.WARNING if self._backoff.attempts <= 3 else logging.DEBUG
        _log.log(level, "device_sdk: cannot connect (%s); next attempt in %.1f s", error, delay)

    def _on_connected(self, link: Link) -> None:
        self.sessions += 1
        self._protocols[link.broker.url] = link.protocol
        self._confirmed.add(link.broker.url)
        link.client.subscribe(
            [(self._topics[Channel.COMMANDS], 1), (self._topics[Channel.CONFIG_DESIRED], 1)]
        )
        self._queue.rewind()
        self._hold.end()
        self._linger_since = None
        self._next_state = time.monotonic()
        _log.info(
            "device_sdk: connected to %s (%s)%s",
            link.broker.url,
            link.protocol_name,
            ", reconnect" if self.sessions > 1 else "",
        )

    def _on_subscribed(self, link: Link) -> None:
        if link.error is not None:  # e.g. an ACL refuses the down-link topics
            _log.warning("device_sdk: %s; commands and config will not arrive", link.error)
            self.last_error, link.error = link.error, None
        self._connected.set()

    def _after_close(self, link: Link, now: float) -> None:
        close_link(link, graceful=False)
        self._link = None
        if link.connected:
            self._connected.clear()
            self.last_error = link.error
            if now - link.started >= _STABLE_SESSION_S:
                self._backoff.reset()
            requeue = [f.outgoing for f in link.in_flight.values() if f.outgoing is not None]
            if requeue:
                with self._outbox_lock:
                    self._outbox.extendleft(reversed(requeue))
            self._queue.rewind()
            delay = self._backoff.next_delay()
            self._next_attempt = now + delay
            _log.warning(
                "device_sdk: disconnected from %s (%s); reconnecting in %.1f s",
                link.broker.url,
                link.error,
                delay,
            )
        elif link.refused_protocol and link.protocol == MQTT5 and self._config.protocol == "auto":
            self._protocols[link.broker.url] = MQTT311
            self._next_attempt = now
            _log.info("device_sdk: %s refused MQTT 5; using MQTT 3.1.1", link.broker.url)
        else:
            url = link.broker.url
            if self._config.protocol == "auto" and url not in self._confirmed:
                # No CONNACK at all: some 3.1.1-only brokers hang on an MQTT 5 CONNECT instead
                # of refusing it. Alternate until one protocol is confirmed for this URL.
                self._protocols[url] = MQTT311 if link.protocol == MQTT5 else MQTT5
            self._failed(f"{url}: {link.error or 'connection closed'}", now)

    # ------------------------------------------------------------------ publishing

    def _publish(
        self,
        link: Link,
        channel: Channel,
        payload: bytes,
        *,
        retain: bool,
        indexes: range | list[int],
        outgoing: Outgoing | None,
    ) -> bool:
        info = link.client.publish(self._topics[channel], payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            link.error = f"publish failed: {mqtt.error_string(info.rc)}"
            link.closed = True
            if outgoing is not None:
                with self._outbox_lock:
                    self._outbox.appendleft(outgoing)
            return False
        link.in_flight[info.mid] = Flight(indexes, time.monotonic(), outgoing)
        link.in_flight_entries += len(indexes)
        return True

    def _pump(self, link: Link, now: float) -> None:
        limit = self._config.max_in_flight
        while self._outbox and len(link.in_flight) < limit + 8 and not link.closed:
            with self._outbox_lock:
                message = self._outbox.popleft()
            self._publish(
                link,
                message.channel,
                message.payload,
                retain=message.retain,
                indexes=[],
                outgoing=message,
            )
        if now >= self._next_state and not link.closed:
            self._next_state = (
                now + self._config.state_interval_s if self._config.state_interval_s else 1e18
            )
            self._publish(
                link,
                Channel.STATE,
                self._state_payload(True),
                retain=True,
                indexes=[],
                outgoing=None,
            )
        if self._hold.active:
            if self._hold.remaining(now) or link.in_flight_entries:
                return  # held; the batches still in flight are answered first
            self._queue.rewind()
            self._hold.end()
        while len(link.in_flight) < limit and not link.closed and self._batch_ready(now):
            items = self._queue.read(self._config.batch_max_entries, self._config.batch_max_bytes)
            self._linger_since = None
            if not items:
                break
            for kind, label, group in _groups(items):
                payload = encode_batch(
                    device=self._config.device_id,
                    kind=kind,
                    boot=label or self._boot,
                    sent=time.time_ns() // 1_000_000,
                    up=time.monotonic_ns() // 1_000_000 if label == self._boot else None,
                    dropped=self._queue.stats().dropped,
                    entries=[(item.index, item.data) for item in group],
                )
                first, last = group[0].index, group[-1].index
                indexes = (
                    range(first, last + 1)
                    if last - first + 1 == len(group)
                    else [item.index for item in group]
                )
                if not self._publish(
                    link,
                    _KIND_CHANNELS[kind],
                    payload,
                    retain=False,
                    indexes=indexes,
                    outgoing=None,
                ):
                    return

    def _batch_ready(self, now: float) -> bool:
        unread = self._queue.unread
        if unread == 0:
            self._linger_since = None
            return False
        if unread >= self._config.batch_max_entries or self._flushing or self._stop_requested:
            return True
        if self._linger_since is None:
            self._linger_since = now
        return now - self._linger_since >= self._config.batch_linger_s

    def _on_puback(self, link: Link, mid: int, code: int, reason: str) -> None:
        flight = link.in_flight.pop(mid, None)
        if flight is None:
            return
        link.in_flight_entries -= len(flight.indexes)
        if code == NO_MATCHING_SUBSCRIBERS and flight.indexes and self._config.hold_unrouted:
            self._hold_unrouted(reason)
            return
        if code < FIRST_FAILURE:
            if flight.indexes:
                self.sent += self._queue.ack(flight.indexes)
                self._hold.delivered()
                self._on_acked()
            return
        self.rejected += 1
        self.last_error = f"broker refused a publish: {reason}"
        _log.warning("device_sdk: %s", self.last_error)
        if flight.indexes:
            # Keep the entries: reconnect (with backoff) and send them again.
            link.error = self.last_error
            link.closed = True

    def _hold_unrouted(self, reason: str) -> None:
        """Keep a batch nobody subscribes to: stop sending batches for a backoff delay, then
        read again from the first unacknowledged entry (the link stays up)."""
        self.unrouted += 1
        delay = self._hold.start(time.monotonic())
        if delay is None:
            return  # already held: the delay was set by the first batch of this round
        self.last_error = f"no subscriber for the readings ({reason}); holding them"
        _log.log(self._hold.log_level, "device_sdk: %s, next try in %.1f s", self.last_error, delay)

    def _on_mqtt_message(self, topic: str, payload: bytes) -> None:
        channel = self._downlink.get(topic)
        if channel is not None:
            self._on_message(channel, payload)

    # ------------------------------------------------------------------ waiting

    def _timers_due(self, now: float) -> float:
        due = self._max_poll_s
        if self._queue.unsynced:
            due = min(due, self._next_fsync - now)
        if self._queue.needs_checkpoint:
            due = min(due, self._next_checkpoint - now)
        return max(0.0, due)

    def _timeout(self, link: Link, now: float) -> float:
        timeout = self._timers_due(now)
        if not link.connected:
            return max(0.0, min(timeout, link.connack_deadline - now))
        if self._outbox:
            return 0.0
        timeout = min(timeout, self._next_state - now)
        if self._hold.active:
            if self._hold.remaining(now):
                timeout = min(timeout, self._hold.remaining(now))
        elif len(link.in_flight) < self._config.max_in_flight and self._queue.unread:
            since = self._linger_since if self._linger_since is not None else now
            timeout = min(timeout, since + self._config.batch_linger_s - now)
        if self._stop_requested:
            timeout = min(timeout, 0.05)
        return max(0.0, timeout)

    def _poll(self, link: Link | None, timeout: float) -> None:
        sock = link.client.socket() if link is not None else None
        if link is not None and sock is None:
            link.error = link.error or "socket closed"
            link.closed = True
            return
        readers: list[Any] = [self._wake_r]
        writers: list[Any] = []
        if sock is not None:
            readers.append(sock)
            if _tls_pending(sock):
                timeout = 0.0
            if link is not None and link.client.want_write():
                writers.append(sock)
        if timeout > 0 and self._queue.unread == 0 and not self._outbox:
            self._sleeping = True
            if self._queue.unread or self._outbox or self._stop_requested:
                self._sleeping = False
                timeout = 0.0
        try:
            readable, writable, _ = select.select(readers, writers, [], max(0.0, timeout))
        except (OSError, ValueError) as exc:
            if link is not None:
                link.error = f"socket error: {exc}"
                link.closed = True
            return
        finally:
            self._sleeping = False
        if self._wake_r in readable:
            with contextlib.suppress(OSError):
                while self._wake_r.recv(4096):
                    pass
        if link is None or sock is None:
            return
        client = link.client
        if sock in readable or _tls_pending(sock):
            client.loop_read()
        if not link.closed and (sock in writable or client.want_write()):
            client.loop_write()
        if not link.closed:
            client.loop_misc()

    def _housekeeping(self, now: float) -> None:
        self._reserve_requested = False
        self._queue.reserve_ahead()
        if now >= self._next_fsync:
            self._next_fsync = now + self._config.fsync_interval_s
            if self._config.durability is Durability.WRITE and self._queue.unsynced:
                self._queue.sync()
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + _CHECKPOINT_INTERVAL_S
            if self._queue.needs_checkpoint:
                self._queue.checkpoint()

    def _shutdown(self) -> None:
        link = self._link
        if link is not None and link.connected and not link.closed:
            # Say goodbye: a graceful DISCONNECT suppresses the will, so publish it ourselves.
            self._publish(
                link,
                Channel.STATE,
                self._state_payload(False),
                retain=True,
                indexes=[],
                outgoing=None,
            )
            deadline = time.monotonic() + 0.5
            while link.in_flight and not link.closed and time.monotonic() < deadline:
                self._poll(link, 0.05)
            close_link(link, graceful=True)
        elif link is not None:
            close_link(link, graceful=False)
        self._link = None
        self._connected.clear()


def _groups(items: list[QueueItem]) -> list[tuple[BatchKind, str, list[QueueItem]]]:
    """Split items into batches of one kind and one boot, keeping index order in each."""
    first = items[0]
    if all(item.tag == first.tag and item.label == first.label for item in items):
        return [(TAG_KINDS.get(first.tag, BatchKind.EVENTS), first.label, items)]
    groups: dict[tuple[int, str], list[QueueItem]] = {}
    for item in items:
        groups.setdefault((item.tag, item.label), []).append(item)
    return [
        (TAG_KINDS.get(tag, BatchKind.EVENTS), label, group)
        for (tag, label), group in groups.items()
    ]


def _tls_pending(sock: object) -> bool:
    """Whether a TLS socket holds decrypted bytes that ``select`` cannot see."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
