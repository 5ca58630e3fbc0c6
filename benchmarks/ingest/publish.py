"""A simulated fleet publishing telemetry batches, as a separate process (its own GIL).

``python -m benchmarks.ingest.publish --broker URL --root R --prefix P --devices N
--readings R --messages M [--rate MSG_PER_S] [--first-seq S] [--client raw|paho]``
publishes ``M`` batches round-robin over the devices at QoS 1, waits until the broker
acknowledged every one, and prints one JSON line:
``{"messages": …, "readings": …, "acked": …, "seconds": …, "cpu_us_per_message": …}``.

``--client raw`` (the default) writes MQTT packets straight to a socket
(:mod:`benchmarks.ingest.raw_publisher`), ``paho`` publishes through
:class:`backend.ingest.loadgen.FleetPublisher`; both send the same batches.
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import signal
import sys
import threading
import time

from backend.ingest.loadgen import DEFAULT_METRICS, FleetPublisher, FleetSpec
from benchmarks.ingest.raw_publisher import RawMqttPublisher
from fleetcare.cli.mqtt_probe import BrokerEndpoint


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def publish_raw(
    source: FleetPublisher,
    broker_url: str,
    messages: int,
    rate: float | None,
    stop: threading.Event,
) -> tuple[int, bool]:
    """Publish ``messages`` of ``source``'s batches round-robin with a raw-socket client."""
    endpoint = BrokerEndpoint.from_url(broker_url)
    client = RawMqttPublisher(endpoint.host, endpoint.port, f"fleet-raw-{secrets.token_hex(4)}")
    client.connect()
    devices = source.spec.devices
    started = time.monotonic()
    sent = 0
    try:
        while sent < messages and not stop.is_set():
            if rate:
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            topic, payload, readings = source.message(sent % devices)
            client.publish(topic, payload, readings)
            sent += 1
        acked = client.wait_acked(120)
    finally:
        client.close()
    return sent, acked


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
    parser.add_argument("--client", choices=("raw", "paho"), default="raw")
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
    cpu = _cpu_seconds()
    started = time.monotonic()
    if args.client == "raw":
        sent, acked = publish_raw(publisher, args.broker, args.messages, args.rate, stop)
    else:
        publisher.start()
        sent = publisher.publish(args.messages, rate=args.rate, stop=stop)
        acked = publisher.wait_acked(120)
        publisher.stop()
    seconds = time.monotonic() - started
    cpu = _cpu_seconds() - cpu
    print(
        json.dumps(
            {
                "messages": sent,
                "readings": publisher.readings_sent,
                "acked": acked,
                "seconds": round(seconds, 3),
                "cpu_us_per_message": round(cpu / max(1, sent) * 1e6, 1),
            }
        ),
        flush=True,
    )
    sys.exit(0 if acked else 1)


if __name__ == "__main__":
    main()
