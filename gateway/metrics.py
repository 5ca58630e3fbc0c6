"""The gateway's counters: what it received, refused, filtered, forwarded and raised."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields

__all__ = ["GatewayMetrics"]


@dataclass
class GatewayMetrics:
    """Counters since the gateway started (thread-safe increments through :meth:`add`)."""

    received_entries: int = 0
    """Entries accepted from local MQTT devices and written to the queue."""
    rejected_batches: int = 0
    """Local batches that failed the wire contract (logged, not queued)."""
    refused_devices: int = 0
    """Local batches from devices outside the configured device list."""
    polled_readings: int = 0
    modbus_errors: int = 0
    filtered_values: int = 0
    """Metric values suppressed by a bandwidth rule."""
    forwarded_entries: int = 0
    """Entries acknowledged by the central broker."""
    published_messages: int = 0
    unrouted_batches: int = 0
    """Forwarded batches the central broker acknowledged with "no matching subscribers"
    (MQTT 5 reason 0x10): kept in the queue and sent again after a backoff."""
    refused_batches: int = 0
    """Forwarded batches the central broker refused (MQTT 5 PUBACK reason >= 0x80, e.g.
    not authorised, quota exceeded): kept in the queue and sent again after a backoff."""
    reconnects: int = 0
    connect_failures: int = 0
    inference_runs: int = 0
    inference_skipped: int = 0
    """Readings not scored because the inference queue was full."""
    alerts: int = 0
    config_applied: int = 0
    config_rejected: int = 0
    downlink_forwarded: int = 0
    """Commands and desired configs for site devices republished on the local broker."""
    answers_forwarded: int = 0
    """Site devices' command replies and config reports published upstream."""
    answers_dropped: int = 0
    """Answers dropped while the uplink was down and more than 10,000 waited."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}
