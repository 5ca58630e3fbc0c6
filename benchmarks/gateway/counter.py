"""Counts distinct (device, seq) readings arriving at a broker (a process of its own).

    python -m benchmarks.gateway.counter PORT ROOT TARGET TIMEOUT_S

Prints ``READY`` once subscribed, then ``DONE <last_arrival_epoch_s> <distinct> <duplicates>``
when TARGET distinct readings arrived (or the timeout passed).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk.wire import decode_batch, parse_topic


def main() -> int:
    port, root, target, timeout = (
        int(sys.argv[1]),
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    seen: set[tuple[str, int]] = set()
    duplicates = 0
    last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal duplicates, last
        _root, _v, device, channel = parse_topic(msg.topic)
        if channel.value != "telemetry":
            return
        for entry in decode_batch(msg.payload, device_id=device).entries:
            key = (device, entry["seq"])
            if key in seen:
                duplicates += 1
            else:
                seen.add(key)
        last = time.time()
        if len(seen) >= target:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-counter", clean_session=False
    )
    client.max_inflight_messages_set(100)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe(f"{root}/v1/+/telemetry", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    print("READY", flush=True)
    done.wait(timeout)
    print(f"DONE {last:.6f} {len(seen)} {duplicates}", flush=True)
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
