"""The same client from asyncio, with an ``async`` command handler.

    python examples/device_async.py --broker mqtt://127.0.0.1:1883 --duration 10

Send it a command from another shell:

    python examples/backend_console.py command fan-7 set_speed '{"rpm": 900}'

"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
from pathlib import Path
from typing import Any

from device_sdk import AsyncDeviceClient, Command, DeviceConfig


async def run(args: argparse.Namespace) -> None:
    config = DeviceConfig(
        device_id=args.device,
        broker_urls=[args.broker],
        queue_path=args.queue,
        topic_root=args.root,
    )
    client = AsyncDeviceClient(config)
    target_rpm = 1200.0

    @client.command("set_speed")
    async def set_speed(command: Command) -> dict[str, Any]:
        nonlocal target_rpm
        rpm = command.args.get("rpm")
        if not isinstance(rpm, int | float) or not 0 <= rpm <= 3000:
            raise ValueError("args.rpm must be a number in 0..3000")  # the reply says "error"
        target_rpm = float(rpm)
        await asyncio.sleep(0.1)  # e.g. wait for the motor controller
        return {"rpm": target_rpm}

    async with client:
        loop = asyncio.get_running_loop()
        end = loop.time() + args.duration
        while loop.time() < end:
            rpm = target_rpm + random.gauss(0, 5)
            await client.record({"rpm": rpm, "temp_c": 35 + rpm / 400})
            await asyncio.sleep(0.1)
        logging.info("health: %s", client.health())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", default=os.environ.get("BROKER_URL", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--device", default="fan-7")
    parser.add_argument("--queue", type=Path, default=Path.home() / ".cache/fleetcare/fan-7")
    parser.add_argument("--root", default="fleetcare")
    parser.add_argument("--duration", type=float, default=10.0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
