"""Which worker writes which device when every worker receives every message.

With ``subscription = partitioned`` each of N workers holds *plain* subscriptions to every
ingest topic (plain subscriptions of a persistent session survive a mosquitto restart;
shared ones do not) and writes only the devices of its partition: ``crc32(device) % N``.
The messages of other partitions are acknowledged unwritten, in arrival order. A topic
without a device level belongs to partition 0, so it is dead-lettered once.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


def topic_device(topic: str) -> str:
    """The device level of ``{root}/v1/{device}/{channel}`` (``""`` when there is none)."""
    parts = topic.rsplit("/", 2)
    return parts[1] if len(parts) == 3 else ""


@dataclass(frozen=True, slots=True)
class DevicePartition:
    """Partition ``index`` of ``count``: the devices whose CRC-32 modulo ``count`` is ``index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count} does not exist")

    def owns_device(self, device: str) -> bool:
        if not device:
            return self.index == 0
        return zlib.crc32(device.encode("utf-8", "replace")) % self.count == self.index

    def owns(self, topic: str) -> bool:
        """Whether this partition writes the message on ``topic``."""
        return self.count == 1 or self.owns_device(topic_device(topic))
