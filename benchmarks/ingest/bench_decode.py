"""The ingest's telemetry decode: the wire contract's ``decode_batch`` against the fast path.

``python -m benchmarks.ingest.bench_decode [--messages 2000] [--runs 7]`` decodes the load
generator's batches (50 readings of 8 metrics, about 9.8 KB of JSON) both ways, interleaved
in one process, and prints the best run of each in µs a message and the ratio. Both ways end
with the same :class:`TelemetryColumns` (the contract's dicts are turned into the columns the
COPY rows are packed from, as the ingest does when a batch takes that path); the run stops if
they differ.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from backend.ingest.loadgen import FleetPublisher, FleetSpec
from backend.ingest.telemetry_fast import TelemetryColumns, decode_telemetry
from device_sdk.wire import decode_batch


def _contract(payload: bytes) -> TelemetryColumns:
    return TelemetryColumns.of_batch(decode_batch(payload))


def _best_us(
    decode: Callable[[bytes], TelemetryColumns | None], payloads: list[bytes], runs: int
) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for payload in payloads:
            decode(payload)
        best = min(best, time.perf_counter() - started)
    return best / len(payloads) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    spec = FleetSpec(prefix="bench", devices=200)
    source = FleetPublisher("mqtt://127.0.0.1:1", "bench", spec, first_seq=1)
    payloads = [source.message(i % spec.devices)[1] for i in range(args.messages)]
    for payload in payloads[:50]:
        if decode_telemetry(payload) != _contract(payload):
            raise SystemExit("the two paths disagree")
    reference = fast = float("inf")
    for _ in range(3):  # interleaved rounds: both see the same machine
        reference = min(reference, _best_us(_contract, payloads, args.runs))
        fast = min(fast, _best_us(decode_telemetry, payloads, args.runs))
    size = sum(map(len, payloads)) / len(payloads)
    readings = spec.readings_per_message
    print(f"{args.messages} batches of {readings} readings x 8 metrics, {size:,.0f} bytes")
    print(f"decode_batch + columns (orjson, per-value checks): {reference:7.1f} µs a message")
    print(f"fast path (one typed msgspec pass):                 {fast:7.1f} µs a message")
    print(f"ratio: {reference / fast:.2f}x")


if __name__ == "__main__":
    main()
