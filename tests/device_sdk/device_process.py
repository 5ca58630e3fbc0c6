"""A device program for the SIGKILL test: records a counter-driven stream.

After each ``record()`` returns it writes the sequence number to stdout with one
``write(2)``, so every number the parent reads was accepted before the kill.

    python -m tests.device_sdk.device_process URL QUEUE ROOT [--count N]

With ``--count 0`` it records until killed; otherwise it records N readings, flushes,
prints ``FLUSHED`` and exits.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from device_sdk import DeviceClient, DeviceConfig


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue", type=Path)
    parser.add_argument("root")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--device", default="dev-kill")
    args = parser.parse_args()
    config = DeviceConfig(
        device_id=args.device,
        broker_urls=[args.url],
        queue_path=args.queue,
        topic_root=args.root,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        batch_linger_s=0.01,
        state_interval_s=0,
    )
    with DeviceClient(config) as client:
        os.write(1, b"READY\n")
        counter = 0
        while args.count == 0 or counter < args.count:
            seq = client.record({"counter": float(counter)})
            os.write(1, b"%d\n" % seq)
            counter += 1
        client.flush(60)
        os.write(1, b"FLUSHED\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
