"""The backend side of the wire contract, for trying the examples: listen, send commands,
set desired config. Uses only paho and ``device_sdk.wire`` (as the ingest does).

    python examples/backend_console.py listen                 # decode everything, dedup on seq
    python examples/backend_console.py command fan-7 set_speed '{"rpm": 900}'
    python examples/backend_console.py desired compressor-3 '{"sample_hz": 50}'
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk.wire import (
    BATCH_CHANNELS,
    Channel,
    CommandRequest,
    DesiredConfig,
    PayloadError,
    TopicError,
    build_topic,
    decode_batch,
    encode_model,
    parse_topic,
)


def connect(url: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"console-{secrets.token_hex(3)}")
    client.connect(host, int(port))
    return client


def listen(client: mqtt.Client, root: str, seconds: float) -> None:
    seen: set[tuple[str, int]] = set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            _root, _version, device, channel = parse_topic(msg.topic)
            if channel in BATCH_CHANNELS:
                batch = decode_batch(msg.payload, device_id=device, kind=channel.value)
                new = [e for e in batch.entries if (device, e["seq"]) not in seen]
                seen.update((device, e["seq"]) for e in new)
                print(
                    f"{device} {channel}: {len(batch.entries)} entries, {len(new)} new, "
                    f"dropped so far {batch.dropped}"
                )
            else:
                print(f"{device} {channel}: {msg.payload.decode()[:200]}")
        except (TopicError, PayloadError) as exc:
            print(f"refused {msg.topic}: {exc}")

    client.on_message = on_message
    client.subscribe(f"{root}/v1/+/#", qos=1)
    client.loop_start()
    time.sleep(seconds)
    client.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["listen", "command", "desired"])
    parser.add_argument("device", nargs="?")
    parser.add_argument("name_or_config", nargs="?")
    parser.add_argument("args", nargs="?", default="{}")
    parser.add_argument("--broker", default=os.environ.get("BROKER_URL", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--root", default="fleetcare")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--version", type=int, default=int(time.time()))
    ns = parser.parse_args()
    client = connect(ns.broker)
    if ns.action == "listen":
        listen(client, ns.root, ns.seconds)
        return 0
    client.loop_start()
    if ns.action == "command":
        request = CommandRequest(
            v=1, id=secrets.token_hex(4), name=ns.name_or_config, args=orjson.loads(ns.args)
        )
        topic = build_topic(ns.device, Channel.COMMANDS, ns.root)
        client.publish(topic, encode_model(request), qos=1).wait_for_publish(5)
    else:
        desired = DesiredConfig(v=1, version=ns.version, config=orjson.loads(ns.name_or_config))
        topic = build_topic(ns.device, Channel.CONFIG_DESIRED, ns.root)
        client.publish(topic, encode_model(desired), qos=1, retain=True).wait_for_publish(5)
    print(f"sent to {topic}")
    client.loop_stop()
    client.disconnect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
