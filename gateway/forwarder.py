"""The forwarding thread: durable queues to the central broker, exactly once after dedup.

Loop: read unacknowledged items (priority queue first), group them by (device, kind, boot)
into wire batches (:func:`device_sdk.wire.encode_batch`, no re-encoding of entries),
publish with QoS 1 keeping at most ``max_in_flight`` messages unacknowledged, and
acknowledge the items in the queue only on the broker's PUBACK. After a disconnect every
unacknowledged item is read again (same ``seq``): the receiver deduplicates on
(device, seq). The same thread runs the queues' chores (checkpoints, fsync, reservations),
turns drops into ``gateway.dropped`` events, and publishes the gateway's ``state``.

An MQTT 5 PUBACK with reason 0x10 ("no matching subscribers", with ``hold_unrouted``) or
with a failure reason (>= 0x80) is not an acknowledgement: the batch stays in the queue,
forwarding is held for a backoff delay (the uplink's reconnect backoff, while the session
stays up), and then everything unacknowledged is read again from the first such entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from device_sdk.backoff import FIRST_FAILURE, NO_MATCHING_SUBSCRIBERS, HoldOff
from device_sdk.queue import DurableQueue, QueueItem
from device_sdk.wire import (
    BatchKind,
    Channel,
    Health,
    StateMessage,
    build_topic,
    encode_batch,
    encode_model,
)
from gateway.clock import gateway_boot_id, now_ms, uptime_ms
from gateway.config import UplinkConfig
from gateway.metrics import GatewayMetrics
from gateway.records import decode_item
from gateway.store import Store
from gateway.uplink import GATEWAY_AGENT, Uplink

__all__ = ["Forwarder", "OutgoingBatch", "build_batches"]

_log = logging.getLogger("gateway.forwarder")

_CHORE_INTERVAL_S = 0.1


@dataclass(slots=True)
class OutgoingBatch:
    queue: DurableQueue
    topic: str
    payload: bytes
    indexes: list[int]


def build_batches(
    queue: DurableQueue, items: list[QueueItem], topic_root: str
) -> list[OutgoingBatch]:
    """Group queue items into one wire batch per (device, kind, boot), in first-seen order."""
    groups: dict[tuple[str, BatchKind, str], list[tuple[QueueItem, int, bytes, int, int | None]]]
    groups = {}
    dropped: dict[str, int] = {}
    here = gateway_boot_id()
    for item in items:
        kind, entry = decode_item(item.data, item.tag)
        seq = item.index if entry.seq < 0 else entry.seq
        up_offset = entry.up_offset_ms if item.label == here else None
        key = (entry.device, kind, entry.boot)
        groups.setdefault(key, []).append((item, seq, entry.body, entry.sent_offset_ms, up_offset))
        dropped[entry.device] = max(dropped.get(entry.device, 0), entry.dropped)
    batches = []
    wall, mono = now_ms(), uptime_ms()
    for (device, kind, boot), members in groups.items():
        _item, _seq, _body, sent_offset, up_offset = members[-1]
        payload = encode_batch(
            device=device,
            kind=kind,
            boot=boot,
            sent=max(0, wall + sent_offset),
            up=max(0, mono + up_offset) if up_offset is not None else None,
            dropped=dropped[device],
            entries=[(seq, body) for _i, seq, body, _s, _u in members],
        )
        batches.append(
            OutgoingBatch(
                queue=queue,
                topic=build_topic(device, Channel(kind.value), topic_root),
                payload=payload,
                indexes=[m[0].index for m in members],
            )
        )
    return batches


class Forwarder:
    def __init__(
        self,
        store: Store,
        uplink: Uplink,
        config: UplinkConfig,
        metrics: GatewayMetrics,
        gateway_id: str,
        fsync_interval_s: float,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.uplink = uplink
        self.config = config
        self.metrics = metrics
        self.gateway_id = gateway_id
        self.fsync_interval_s = fsync_interval_s
        self.on_tick = on_tick
        store.on_append = uplink.wake.set
        self._in_flight: dict[int, OutgoingBatch] = {}
        self._outbox: list[OutgoingBatch] = []
        self._session = -1
        # Held after a PUBACK that is not an acknowledgement, then read again.
        self._hold_off = HoldOff(config.reconnect_min_s, config.reconnect_max_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-forwarder", daemon=True)
        self._last_state = 0.0

    @property
    def in_flight_entries(self) -> int:
        return sum(len(b.indexes) for b in list(self._in_flight.values()))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Deliver what can be delivered within ``timeout``, then stop the thread."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.uplink.connected.is_set():
            if self.store.stats().queued == 0:
                break
            time.sleep(0.02)
        self._stop.set()
        self.uplink.wake.set()
        self._thread.join(5)

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        last_chores = last_sync = 0.0
        while not self._stop.is_set():
            try:
                self._turn()
                now = time.monotonic()
                if now - last_chores >= _CHORE_INTERVAL_S:
                    last_chores = now
                    self.store.chores()
                    self._report_drops()
                    if self.on_tick is not None:
                        self.on_tick()
                if now - last_sync >= self.fsync_interval_s:
                    last_sync = now
                    self.store.sync()
                self._maybe_publish_state(now)
            except Exception:  # the thread's top level: log, pause, carry on
                _log.exception("forwarder turn failed")
                time.sleep(0.5)

    def _turn(self) -> None:
        uplink = self.uplink
        uplink.wake.clear()  # before looking: a wake-up during this turn ends the next wait
        self._take_acks()
        if not uplink.connected.is_set() or uplink.session != self._session:
            self._reset()
            if not uplink.connected.is_set():
                uplink.wake.wait(_CHORE_INTERVAL_S)
                return
            self._session = uplink.session
            self._publish_state()
        if self._hold_off.active and not self._resume():
            return
        while len(self._in_flight) < self.config.max_in_flight:
            if not self._outbox:
                self._fill_outbox()
                if not self._outbox:
                    break
            batch = self._outbox[0]
            mid = uplink.publish(batch.topic, batch.payload)
            if mid is None:
                return  # disconnected: the next turn resets
            self._outbox.pop(0)
            self._in_flight[mid] = batch
            self.metrics.add("published_messages")
        if not uplink.acks:
            uplink.wake.wait(_CHORE_INTERVAL_S)

    def _fill_outbox(self) -> None:
        limit, max_bytes = self.config.batch_max_entries, self.config.batch_max_bytes
        for queue in self.store.queues:
            items = queue.read(max_items=limit, max_bytes=max_bytes)
            if items:
                self._outbox.extend(build_batches(queue, items, self.config.topic_root))
                return

    def _take_acks(self) -> None:
        acks = self.uplink.acks
        forwarded = 0
        while acks:
            mid, code = acks.popleft()
            batch = self._in_flight.pop(mid, None)
            if batch is None:
                continue
            if code == NO_MATCHING_SUBSCRIBERS and self.config.hold_unrouted:
                self.metrics.add("unrouted_batches")
                self._hold(f"no subscriber for {batch.topic} (PUBACK reason 0x10)")
            elif code >= FIRST_FAILURE:
                self.metrics.add("refused_batches")
                self._hold(f"broker refused {batch.topic} (PUBACK reason 0x{code:02x})")
            else:
                forwarded += batch.queue.ack(batch.indexes)
                self._hold_off.delivered()
        if forwarded:
            self.metrics.add("forwarded_entries", forwarded)

    def _hold(self, reason: str) -> None:
        """Keep a batch the broker did not take: stop sending batches for a backoff delay,
        then read again from the first unacknowledged entry (the session stays up)."""
        delay = self._hold_off.start(time.monotonic())
        if delay is None:
            return  # already held: the delay was set by the first answer of this round
        self.uplink.last_error = f"{reason}; holding the readings"
        _log.log(
            self._hold_off.log_level, "%s; holding the readings, next try in %.1f s", reason, delay
        )

    def _resume(self) -> bool:
        """While held: wait. ``True`` once the delay passed and every batch in flight was
        answered (so nothing is read twice); the queues are then rewound."""
        remaining = self._hold_off.remaining(time.monotonic())
        if remaining > 0 or self._in_flight:
            self.uplink.wake.wait(
                min(_CHORE_INTERVAL_S, remaining) if remaining > 0 else _CHORE_INTERVAL_S
            )
            return False
        self._outbox.clear()
        for queue in self.store.queues:
            queue.rewind()
        self._hold_off.end()
        return True

    def _reset(self) -> None:
        self._hold_off.end()  # a new session reads everything unacknowledged again anyway
        if self._in_flight or self._outbox or self._session != -1:
            self._in_flight.clear()
            self._outbox.clear()
            for queue in self.store.queues:
                queue.rewind()
            self._session = -1

    # ------------------------------------------------------------------ bookkeeping

    def _report_drops(self) -> None:
        for name, queue in (("bulk", self.store.bulk), ("priority", self.store.priority)):
            if not queue.has_drops:
                continue
            report = queue.take_drops()
            if report is None:
                continue
            self.store.gateway_event(
                "gateway.dropped",
                severity="warning",
                code="queue_bound",
                msg=(f"{name} queue bound reached: {report.count} entries dropped, oldest first"),
                attrs={
                    "queue": name,
                    "count": report.count,
                    "first_index": report.first_index,
                    "last_index": report.last_index,
                },
            )

    def health(self) -> Health:
        stats = self.store.stats()
        snapshot = self.metrics.snapshot()
        return Health(
            connected=self.uplink.connected.is_set(),
            broker=self.uplink.safe_url,
            protocol=self.uplink.protocol_name,
            queued=stats.queued,
            in_flight=self.in_flight_entries,
            sent=snapshot["forwarded_entries"],
            recorded=snapshot["received_entries"] + snapshot["polled_readings"],
            dropped=stats.dropped,
            reconnects=snapshot["reconnects"],
            connect_failures=snapshot["connect_failures"],
            unrouted=snapshot["unrouted_batches"],
            oldest_unsent_age_s=stats.oldest_unsent_age_s,
            queue_bytes=stats.queue_bytes,
            queue_max_bytes=stats.queue_max_bytes,
            queue_fill=stats.fill,
            last_error=self.uplink.last_error,
        )

    def state_message(self, online: bool) -> bytes:
        return encode_model(
            StateMessage(
                v=1,
                device=self.gateway_id,
                boot=gateway_boot_id(),
                sent=now_ms(),
                up=uptime_ms(),
                online=online,
                health=self.health() if online else None,
                sdk=GATEWAY_AGENT,
            )
        )

    def _publish_state(self) -> None:
        self._last_state = time.monotonic()
        self.uplink.publish(self.uplink.state_topic, self.state_message(True), retain=True)

    def _maybe_publish_state(self, now: float) -> None:
        interval = self.config.state_interval_s
        if interval > 0 and now - self._last_state >= interval and self.uplink.connected.is_set():
            self._publish_state()
