"""A simulated fleet publishing telemetry batches, as a separate process (its own GIL).

``python -m benchmarks.ingest.publish --broker URL --root R --prefix P --devices N
--readings R --messages M [--rate MSG_PER_S] [--first-seq S]`` publishes ``M`` batches
round-robin over the devices at QoS 1, waits until the broker acknowledged every one, and
prints one JSON line: ``{"messages": …, "readings": …, "seconds": …}``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from backend.ingest.loadgen import DEFAULT_METRICS, FleetPublisher, FleetSpec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--readings", type=int, default=50, help="readings per message")
    parser.add_argument("--metrics", type=int, default=len(DEFAULT_METRICS))
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--rate", type=float, default=None, help="messages/s (default: max)")
    parser.add_argument("--first-seq", type=int, default=1)
    args = parser.parse_args(argv)
    spec = FleetSpec(
        prefix=args.prefix,
        devices=args.devices,
        readings_per_message=args.readings,
        metrics=DEFAULT_METRICS[: args.metrics],
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher = FleetPublisher(args.broker, args.root, spec, first_seq=args.first_seq)
    publisher.start()
    started = time.monotonic()
    sent = publisher.publish(args.messages, rate=args.rate, stop=stop)
    acked = publisher.wait_acked(120)
    seconds = time.monotonic() - started
    publisher.stop()
    print(
        json.dumps(
            {
                "messages": sent,
                "readings": publisher.readings_sent,
                "acked": acked,
                "seconds": round(seconds, 3),
            }
        ),
        flush=True,
    )
    sys.exit(0 if acked else 1)


if __name__ == "__main__":
    main()
