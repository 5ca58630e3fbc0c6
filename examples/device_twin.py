"""Commands and the device twin: the backend sets desired config, the device applies it
and reports what it applied.

    python examples/device_twin.py --broker mqtt://127.0.0.1:1883 --duration 30

Then, from another shell, set a desired config (retained, so a device that is offline gets
it when it connects):

    python examples/backend_console.py desired compressor-3 '{"sample_hz": 50, "eco": true}'
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

from device_sdk import Command, DesiredConfig, DeviceClient, DeviceConfig

MAX_SAMPLE_HZ = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", default=os.environ.get("BROKER_URL", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--device", default="compressor-3")
    parser.add_argument("--queue", type=Path, default=Path.home() / ".cache/fleetcare/compressor-3")
    parser.add_argument("--root", default="fleetcare")
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    config = DeviceConfig(
        device_id=args.device,
        broker_urls=[args.broker],
        queue_path=args.queue,
        topic_root=args.root,
    )
    client = DeviceClient(config)
    settings: dict[str, Any] = {"sample_hz": 1.0, "eco": False}

    @client.on_config
    def apply(desired: DesiredConfig) -> dict[str, Any]:
        """Apply what this model supports; report what was actually applied."""
        unknown = set(desired.config) - set(settings)
        if unknown:
            raise ValueError(f"unsupported settings: {sorted(unknown)}")  # reported "rejected"
        applied: dict[str, Any] = dict(desired.config)
        if "sample_hz" in applied:
            hz = applied["sample_hz"]
            if not isinstance(hz, int | float) or hz <= 0:
                raise ValueError("sample_hz must be a positive number")
            applied["sample_hz"] = min(float(hz), MAX_SAMPLE_HZ)
        settings.update(applied)
        logging.info("applied desired config v%d: %s", desired.version, settings)
        return settings

    @client.command("self_test")
    def self_test(command: Command) -> dict[str, Any]:
        client.event("maintenance", message="self test", attrs={"requested_by": command.id})
        return {"passed": True, "settings": settings}

    with client:
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            client.record({"pressure_bar": 7.9, "temp_c": 61.0})
            time.sleep(1 / float(settings["sample_hz"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
