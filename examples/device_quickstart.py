"""Quick start: a device that records readings, usage and events, and prints its health.

    python examples/device_quickstart.py --broker mqtt://127.0.0.1:1883 --duration 10

Readings survive a crash of this program: kill it with ``kill -9`` and start it again;
what was recorded before the kill is sent after the restart (see docs/device-sdk.md).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path

from device_sdk import DeviceClient, DeviceConfig, SdkError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", default=os.environ.get("BROKER_URL", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--device", default="pump-0042")
    parser.add_argument("--queue", type=Path, default=Path.home() / ".cache/fleetcare/pump-0042")
    parser.add_argument("--root", default="fleetcare")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=10.0, help="readings per second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    config = DeviceConfig(
        device_id=args.device,
        broker_urls=[args.broker],
        queue_path=args.queue,  # one directory per device; created if missing
        topic_root=args.root,
        metric_catalogue=frozenset({"temp_c", "rpm", "current_a"}),
        state_interval_s=5,
    )
    with DeviceClient(config) as client:
        client.event("boot", message="quickstart started", attrs={"fw": "1.4.2"})
        started = time.monotonic()
        session_start = started
        while time.monotonic() - started < args.duration:
            t = time.monotonic() - started
            try:
                seq = client.record(
                    {"temp_c": 40 + 5 * math.sin(t / 10), "rpm": 1450.0, "current_a": 3.2}
                )
            except SdkError as exc:  # bad input raises here, in your code; nothing is queued
                logging.error("reading refused: %s", exc)
                continue
            if seq % 50 == 0:
                health = client.health()
                logging.info(
                    "seq %d: queued=%d sent=%d connected=%s oldest=%.2fs",
                    seq,
                    health.queued,
                    health.sent,
                    health.connected,
                    health.oldest_unsent_age_s or 0.0,
                )
            time.sleep(1 / args.hz)
        client.usage("session", duration_s=time.monotonic() - session_start, attrs={"mode": "demo"})
        try:
            client.flush(timeout=5)  # optional: wait until the broker acknowledged everything
        except SdkError as exc:
            logging.warning("%s; the rest stays queued on disk for the next start", exc)
        logging.info("done: %s", client.health())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
