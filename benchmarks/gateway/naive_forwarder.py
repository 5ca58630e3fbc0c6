"""The baseline: a bare paho forwarder without durability (what many gateways do).

    python -m benchmarks.gateway.naive_forwarder LOCAL_PORT CENTRAL_PORT ROOT

Subscribes to the local broker's batch topics (QoS 1) and republishes every message to the
central broker (QoS 1) from the callback. Messages that cannot be sent yet wait in paho's
memory (unbounded) and are lost if the process dies. Prints ``READY`` when subscribed and
``RECEIVED <n>`` (messages) every 0.2 s.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    local_port, central_port, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    upstream = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-up")
    upstream.max_inflight_messages_set(20)
    upstream.max_queued_messages_set(0)
    upstream.connect_async("127.0.0.1", central_port)
    upstream.loop_start()
    received = 0
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        upstream.publish(msg.topic, msg.payload, qos=1)
        received += 1

    local = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-in", clean_session=False)
    local.on_message = on_message
    local.on_subscribe = lambda *_a: subscribed.set()
    local.on_connect = lambda c, *_a: c.subscribe(f"{root}/v1/+/telemetry", qos=1)
    local.connect("127.0.0.1", local_port)
    local.loop_start()
    subscribed.wait(10)
    print("READY", flush=True)
    while True:
        time.sleep(0.2)
        print(f"RECEIVED {received}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
