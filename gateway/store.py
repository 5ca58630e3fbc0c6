"""Store-and-forward storage: two of the SDK's bounded on-disk queues.

* ``bulk``: readings, usage and events of every device the gateway serves
  (``queue.max_bytes``, oldest dropped first when full);
* ``priority``: the gateway's own events (risk alerts, drop reports); small, and drained
  before ``bulk``, so an alert raised during an outage goes out first after it.

Both are :class:`device_sdk.queue.DurableQueue` (the SDK's implementation, imported).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from device_sdk.queue import DurableQueue, QueueItem
from device_sdk.wire import BatchKind
from gateway.clock import gateway_boot_id, now_ms, uptime_ms
from gateway.config import QueueConfig
from gateway.records import KIND_TAGS, encode_item

__all__ = ["Store", "StoreStats"]


@dataclass(frozen=True, slots=True)
class StoreStats:
    queued: int
    queue_bytes: int
    queue_max_bytes: int
    dropped: int
    oldest_unsent_age_s: float | None

    @property
    def fill(self) -> float:
        return self.queue_bytes / self.queue_max_bytes


class Store:
    def __init__(self, data_dir: Path, config: QueueConfig, gateway_id: str) -> None:
        label = gateway_boot_id()
        self.config = config
        self.gateway_id = gateway_id
        self.bulk = DurableQueue(
            data_dir / "queue", max_bytes=config.max_bytes, segment_bytes=config.segment_bytes,
            label=label,
        )  # fmt: skip
        try:
            self.priority = DurableQueue(
                data_dir / "priority", max_bytes=config.priority_max_bytes, label=label
            )
        except BaseException:
            self.bulk.close()
            raise
        self._event_lock = threading.Lock()
        self.on_append: Callable[[], None] | None = None
        """Called after every append (the forwarder's wake-up)."""

    @property
    def queues(self) -> tuple[DurableQueue, DurableQueue]:
        """Drain order: priority first."""
        return self.priority, self.bulk

    def append(self, kind: BatchKind, items: list[bytes]) -> range:
        """Append encoded items (see :mod:`gateway.records`) in one write; fsync if configured."""
        indexes = self.bulk.append_many(items, tag=KIND_TAGS[kind])
        if self.config.durability == "fsync":
            self.bulk.sync(indexes.stop - 1)
        if self.on_append is not None:
            self.on_append()
        return indexes

    def gateway_event(
        self,
        event_type: str,
        *,
        severity: str,
        code: str | None = None,
        msg: str | None = None,
        attrs: dict[str, str | int | float | bool] | None = None,
    ) -> int:
        """Queue one of the gateway's own events (priority queue; seq = its index)."""
        entry: dict[str, object] = {"t": now_ms(), "u": uptime_ms(), "type": event_type}
        entry["severity"] = severity
        if code is not None:
            entry["code"] = code
        if msg is not None:
            entry["msg"] = msg[:1024]
        if attrs:
            entry["attrs"] = attrs
        data = encode_item(self.gateway_id, gateway_boot_id(), -1, orjson.dumps(entry))
        with self._event_lock:
            index = self.priority.append(data, tag=KIND_TAGS[BatchKind.EVENTS])
            self.priority.sync(index)
        if self.on_append is not None:
            self.on_append()
        return index

    def chores(self) -> None:
        """Periodic upkeep (the forwarder's thread): reservations, checkpoints."""
        for queue in self.queues:
            queue.reserve_ahead()
            if queue.needs_checkpoint:
                queue.checkpoint()

    def sync(self) -> None:
        for queue in self.queues:
            if queue.unsynced:
                queue.sync()

    def stats(self) -> StoreStats:
        bulk, priority = self.bulk.stats(), self.priority.stats()
        times = [t for t in (self.bulk.oldest_unacked_ms(), self.priority.oldest_unacked_ms()) if t]
        oldest = max(0.0, (now_ms() - min(times)) / 1000) if times else None
        return StoreStats(
            queued=bulk.items + priority.items,
            queue_bytes=bulk.bytes + priority.bytes,
            queue_max_bytes=bulk.max_bytes + priority.max_bytes,
            dropped=bulk.dropped + priority.dropped,
            oldest_unsent_age_s=oldest,
        )

    def read(self, queue: DurableQueue, max_items: int, max_bytes: int) -> list[QueueItem]:
        return queue.read(max_items=max_items, max_bytes=max_bytes)

    def close(self) -> None:
        for queue in self.queues:
            queue.close()
