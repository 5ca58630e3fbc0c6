"""Child process for the RSS figures: imports only what the measured program needs.

    python -m benchmarks.device_sdk.rss_probe KIND URL QUEUE N

Prints one JSON object: ``rss`` (MiB, from /proc/self/status) and what it held.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from pathlib import Path

METRICS = {"temp_c": 21.5, "rpm": 1450.0, "current_a": 3.2, "vibration_mm_s": 0.8}


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    assert match is not None
    return int(match.group(1)) / 1024


def sdk(kind: str, url: str, queue: Path, n: int) -> dict[str, float]:
    from device_sdk import DeviceClient, DeviceConfig

    config = DeviceConfig(
        device_id="bench-rss",
        broker_urls=[url],
        queue_path=queue,
        topic_root="bench",
        reconnect_min_s=0.5,
        reconnect_max_s=1.0,
        queue_max_bytes=256 * 1024 * 1024,
    )
    if kind == "sdk-import":
        return {"rss": rss_mib()}
    with DeviceClient(config) as client:
        if kind == "sdk-idle":
            client.wait_connected(5)
            time.sleep(2.0)
        else:
            for _ in range(n // 1000):
                client.record_many([(None, METRICS)] * 1000)
            time.sleep(1.0)
        gc.collect()
        return {"rss": rss_mib(), "queued": client.health().queued}


def paho(kind: str, url: str, n: int) -> dict[str, float]:
    import orjson
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    if kind == "paho-import":
        return {"rss": rss_mib()}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-rss-paho")
    if kind == "paho-idle":
        host, port = url.removeprefix("mqtt://").split(":")
        client.connect(host, int(port))
        client.loop_start()
        time.sleep(2.0)
        client.loop_stop()
    else:  # in paho's in-memory queue, not connected
        for i in range(n):
            client.publish("bench/rss", orjson.dumps({"seq": i, "t": 0, "m": METRICS}), qos=1)
    gc.collect()
    return {"rss": rss_mib(), "queued": n if kind == "paho-queued" else 0}


def main() -> None:
    kind, url, queue, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    if kind == "python":
        result = {"rss": rss_mib()}
    elif kind.startswith("sdk"):
        result = sdk(kind, url, queue, n)
    else:
        result = paho(kind, url, n)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
