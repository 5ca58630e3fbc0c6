"""The downlink for the site's SDK devices: commands and desired configs from the central
broker to the local one, and the devices' answers back.

A device behind the gateway subscribes to its ``commands`` and ``config/desired`` on the
local broker, where the backend cannot publish. The gateway learns the site's SDK devices
from their batches (and from the site's device list), subscribes upstream to those two
topics of each, and republishes what comes on the local broker (``config/desired``
retained, as upstream). The devices' ``commands/reply`` and ``config/reported`` go the
other way, ``config/reported`` retained. Answers that find the uplink down wait in memory
(at most :data:`MAX_PENDING_ANSWERS`, the oldest dropped first and counted) and go on the
next connection; ``config/reported`` is retained on the local broker as well.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Protocol

from device_sdk.wire import Channel, TopicError, build_topic, parse_topic
from gateway.metrics import GatewayMetrics

__all__ = ["ANSWER_CHANNELS", "DOWNLINK_CHANNELS", "MAX_PENDING_ANSWERS", "DownlinkBridge"]

_log = logging.getLogger("gateway.downlink")

DOWNLINK_CHANNELS = (Channel.COMMANDS, Channel.CONFIG_DESIRED)
ANSWER_CHANNELS = (Channel.COMMAND_REPLY, Channel.CONFIG_REPORTED)
MAX_PENDING_ANSWERS = 10_000


class UpstreamLink(Protocol):
    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None: ...

    def add_subscription(self, topic: str) -> None: ...


class LocalLink(Protocol):
    def publish_downlink(self, topic: str, payload: bytes, *, retain: bool) -> None: ...


class DownlinkBridge:
    """Called from paho's threads of both clients; never blocks them."""

    def __init__(
        self,
        gateway_id: str,
        uplink_root: str,
        local_root: str,
        metrics: GatewayMetrics,
    ) -> None:
        self.gateway_id = gateway_id
        self.uplink_root = uplink_root
        self.local_root = local_root
        self.metrics = metrics
        self.uplink: UpstreamLink | None = None
        self.local: LocalLink | None = None
        self.devices: set[str] = set()
        self._pending: deque[tuple[str, bytes, bool]] = deque()
        self._lock = threading.Lock()

    def attach(self, uplink: UpstreamLink, local: LocalLink) -> None:
        self.uplink = uplink
        self.local = local

    def device_seen(self, device: str) -> None:
        """A device of the site: from now on its commands and desired config come here."""
        if device in self.devices or device == self.gateway_id:
            return
        with self._lock:
            if device in self.devices:
                return
            self.devices.add(device)
        if self.uplink is not None:
            for channel in DOWNLINK_CHANNELS:
                self.uplink.add_subscription(build_topic(device, channel, self.uplink_root))
        _log.info("downlink for %s bridged to the local broker", device)

    def from_central(self, topic: str, payload: bytes) -> bool:
        """A message on the uplink: ``True`` when it was for a site device (and sent on)."""
        try:
            _root, _version, device, channel = parse_topic(topic)
        except TopicError:
            return False
        if channel not in DOWNLINK_CHANNELS or device not in self.devices or self.local is None:
            return False
        retain = channel is Channel.CONFIG_DESIRED
        self.local.publish_downlink(
            build_topic(device, channel, self.local_root), payload, retain=retain
        )
        self.metrics.add("downlink_forwarded")
        return True

    def from_local(self, topic: str, payload: bytes) -> None:
        """A device's answer on the local broker: sent upstream now, or when connected."""
        try:
            _root, _version, device, channel = parse_topic(topic)
        except TopicError:
            return
        if channel not in ANSWER_CHANNELS:
            return
        self.device_seen(device)
        message = (
            build_topic(device, channel, self.uplink_root),
            payload,
            channel is Channel.CONFIG_REPORTED,
        )
        with self._lock:
            self._pending.append(message)
            while len(self._pending) > MAX_PENDING_ANSWERS:
                self._pending.popleft()
                self.metrics.add("answers_dropped")
        self.flush()

    def flush(self) -> None:
        """Send the waiting answers while the uplink takes them (forwarder's tick, too)."""
        uplink = self.uplink
        if uplink is None:
            return
        while True:
            with self._lock:
                if not self._pending:
                    return
                topic, payload, retain = self._pending[0]
                if uplink.publish(topic, payload, retain=retain) is None:
                    return
                self._pending.popleft()
            self.metrics.add("answers_forwarded")
