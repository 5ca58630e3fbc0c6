"""The downlink service's MQTT link without a broker: paho's locking around acknowledgements."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt

from backend.downlink.link import DownlinkLink, Outgoing, PublishOutcome


class AckingClient:
    """Stands in for paho: ``publish`` takes the client's message lock, and the network
    thread runs ``on_publish`` while holding that same lock (as paho's
    ``_handle_pubackcomp`` does), here for the acknowledgement of the previous message."""

    def __init__(self, link: DownlinkLink, reason: int = 0) -> None:
        self.link = link
        self.reason = reason
        self.out_message_mutex = threading.Lock()
        self.mid = 0

    def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Any:
        with self.out_message_mutex:
            self.mid += 1
            info = mqtt.MQTTMessageInfo(self.mid)
            info.rc = mqtt.MQTT_ERR_SUCCESS
        acker = threading.Thread(target=self._ack, args=(info,))
        acker.start()
        acker.join(0.05)  # the PUBACK often arrives before publish() returns
        return info

    def _ack(self, info: mqtt.MQTTMessageInfo) -> None:
        with self.out_message_mutex:
            self.link._on_publish(self, None, info.mid, SimpleNamespace(value=self.reason), None)
            info._set_as_published()


def test_publishing_while_paho_acknowledges_does_not_deadlock() -> None:
    link = DownlinkLink("mqtt://127.0.0.1:1", "fc", "t", protocol="5", wake=threading.Event())
    link._connected.set()
    link._client = AckingClient(link)  # type: ignore[assignment]
    outcomes: list[str] = []
    worker = threading.Thread(
        target=lambda: outcomes.extend(
            link.publish_all(
                [Outgoing(f"fc/v1/d{n}/commands", b"{}", retain=False) for n in range(50)],
                timeout_s=5,
            )
        ),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "publish_all deadlocked with paho's acknowledgement thread"
    assert outcomes == [PublishOutcome.DELIVERED] * 50


def test_no_matching_subscribers_is_told_apart_from_a_delivery() -> None:
    link = DownlinkLink("mqtt://127.0.0.1:1", "fc", "t", protocol="5", wake=threading.Event())
    link._connected.set()
    link._client = AckingClient(link, reason=0x10)  # type: ignore[assignment]
    outcomes = link.publish_all([Outgoing("fc/v1/d1/commands", b"{}", retain=False)], timeout_s=5)
    assert outcomes == [PublishOutcome.NO_SUBSCRIBERS]
    link._client = AckingClient(link, reason=0x87)  # type: ignore[assignment]
    outcomes = link.publish_all([Outgoing("fc/v1/d1/commands", b"{}", retain=False)], timeout_s=5)
    assert outcomes == [PublishOutcome.FAILED]
