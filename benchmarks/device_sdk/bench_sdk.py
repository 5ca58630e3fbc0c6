"""device_sdk benchmark: fleetcare's durable client side by side with a bare paho client.

    .venv/bin/python -m benchmarks.device_sdk.bench_sdk [--quick]

Everything runs in one go against a private mosquitto started here (deliberate queue
limits, persistence off), and prints Markdown tables for ``docs/benchmarks.md``:

1. ``record()`` into the durable queue: readings/s and latency percentiles, per durability
   mode, offline (pure enqueue) and online (while the I/O thread publishes);
2. bare paho: ``publish(qos=1)`` of one JSON reading per message into paho's in-memory
   queue (no durability at all), as the baseline;
3. end to end with QoS 1 to mosquitto, **counting distinct readings that arrived** at a
   subscriber in another process (not just timing the sender);
4. resident memory of an idle client, and of one holding 100,000 queued readings, each
   measured in a fresh subprocess;
5. the ingest's decode paths, and what compression would save on the wire.

Absolute figures depend on the machine; compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk import DeviceClient, DeviceConfig
from device_sdk.wire import BatchKind, TelemetryBatch, decode_batch, decode_model, encode_batch
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from fleetcare.embedded.ports import free_tcp_port

ROOT = "bench"
METRICS = {"temp_c": 21.5, "rpm": 1450.0, "current_a": 3.2, "vibration_mm_s": 0.8}


# ----------------------------------------------------------------------------- helpers


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000

    return {"p50": at(0.50), "p99": at(0.99), "p999": at(0.999), "max": ordered[-1] / 1000}


def broker_config() -> MosquittoConfig:
    # Started as root, mosquitto drops to the `mosquitto` user, which cannot enter a 0700
    # temporary directory; stay as the user that created it.
    lines = ("user root",) if os.geteuid() == 0 else ()
    return MosquittoConfig(persistence=False, max_inflight_messages=100, extra_lines=lines)


def device_config(url: str, queue: Path, **overrides: Any) -> DeviceConfig:
    values: dict[str, Any] = {
        "device_id": "bench-1",
        "broker_urls": [url],
        "queue_path": queue,
        "topic_root": ROOT,
        "state_interval_s": 0,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "queue_max_bytes": 256 * 1024 * 1024,
    }
    values.update(overrides)
    return DeviceConfig(**values)


def dead_url() -> str:
    return f"mqtt://127.0.0.1:{free_tcp_port()}"


@contextmanager
def subscriber(
    port: int, topic: str, expected: int, mode: str
) -> Iterator[Callable[[], dict[str, Any]]]:
    """A counting subscriber in another process; the callable waits for its report."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.device_sdk.bench_sdk",
            "--role",
            "subscriber",
            "--port",
            str(port),
            "--topic",
            topic,
            "--expected",
            str(expected),
            "--mode",
            mode,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    assert ready.strip() == "READY", ready

    def result() -> dict[str, Any]:
        out, _ = process.communicate(timeout=120)
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report

    try:
        yield result
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_subscriber(port: int, topic: str, expected: int, mode: str) -> None:
    """Child: count distinct readings (by seq) until ``expected`` or 20 s of silence."""
    seqs: set[int] = set()
    state = {"messages": 0, "last": 0.0, "first": 0.0}

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        state["first"] = state["first"] or now
        state["last"] = now
        state["messages"] += 1
        if mode == "fleetcare":
            for entry in decode_batch(msg.payload).entries:
                seqs.add(entry["seq"])
        elif mode == "paho-batch":
            for entry in orjson.loads(msg.payload)["entries"]:
                seqs.add(entry["seq"])
        else:
            seqs.add(orjson.loads(msg.payload)["seq"])

    subscribed: list[bool] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.max_inflight_messages_set(100)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.append(True)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    while not subscribed:
        client.loop(0.1)
    print("READY", flush=True)
    idle_since = time.monotonic()
    while len(seqs) < expected and time.monotonic() - idle_since < 20:
        before = state["messages"]
        client.loop(0.05)
        if state["messages"] != before:
            idle_since = time.monotonic()
    client.disconnect()
    print(
        json.dumps(
            {
                "distinct": len(seqs),
                "messages": state["messages"],
                "first": state["first"],
                "last": state["last"],
            }
        ),
        flush=True,
    )


# ----------------------------------------------------------------------------- 1. record()


def bench_record(
    workdir: Path, n: int, durability: str, *, url: str | None = None, threads: int = 1
) -> dict[str, Any]:
    """record() latency and throughput; offline (dead URL) unless ``url`` is given."""
    queue = workdir / f"q-record-{durability}-{threads}-{url is not None}"
    config = device_config(url or dead_url(), queue, durability=durability)
    samples: list[int] = []
    with DeviceClient(config) as client:
        if url is not None:
            client.wait_connected(5)
        record = client.record
        clock = time.perf_counter_ns
        gc.collect()
        if threads == 1:
            start = clock()
            for i in range(n):
                t0 = clock()
                record(
                    {
                        "temp_c": 20.0 + (i & 7),
                        "rpm": 1450.0,
                        "current_a": 3.2,
                        "vibration_mm_s": 0.8,
                    }
                )
                samples.append(clock() - t0)
            elapsed = (clock() - start) / 1e9
        else:
            import threading

            per_thread = n // threads
            shards: list[list[int]] = [[] for _ in range(threads)]

            def work(slot: int) -> None:
                out = shards[slot]
                for _ in range(per_thread):
                    t0 = clock()
                    record(METRICS)
                    out.append(clock() - t0)

            workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            start = clock()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = (clock() - start) / 1e9
            samples = [s for shard in shards for s in shard]
        online_sent = client.health().sent if url is not None else 0
    return {
        "rate": len(samples) / elapsed,
        "lat": percentiles(samples),
        "n": len(samples),
        "sent_meanwhile": online_sent,
    }


def bench_record_many(workdir: Path, n: int, batch: int) -> float:
    config = device_config(dead_url(), workdir / "q-record-many")
    readings = [(None, METRICS)] * batch
    with DeviceClient(config) as client:
        start = time.perf_counter()
        for _ in range(n // batch):
            client.record_many(readings)
        return n / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- 2. paho


def bench_paho_enqueue(n: int) -> dict[str, Any]:
    """Bare paho: publish(qos=1) into its in-memory queue while not connected."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="paho-enqueue")
    samples: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    for i in range(n):
        t0 = clock()
        payload = orjson.dumps({"seq": i, "t": time.time_ns() // 1_000_000, "m": METRICS})
        client.publish("bench/paho/telemetry", payload, qos=1)
        samples.append(clock() - t0)
    elapsed = (clock() - start) / 1e9
    return {"rate": n / elapsed, "lat": percentiles(samples)}


def bench_paho_e2e(broker: MosquittoBroker, n: int, per_message: int) -> dict[str, Any]:
    """Bare paho publishing QoS 1 (one reading per message, or a JSON batch), counted at
    a subscriber. Stays below 65,535 outstanding messages (paho reuses ids beyond)."""
    topic = f"bench/paho{per_message}/telemetry"
    mode = "paho" if per_message == 1 else "paho-batch"
    with subscriber(broker.port, topic, n, mode) as result:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"paho-e2e-{per_message}")
        client.max_inflight_messages_set(20)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        start = time.time()
        infos = []
        if per_message == 1:
            for i in range(n):
                payload = orjson.dumps({"seq": i, "t": time.time_ns() // 1_000_000, "m": METRICS})
                infos.append(client.publish(topic, payload, qos=1))
        else:
            for first in range(0, n, per_message):
                entries = [
                    {"seq": i, "t": time.time_ns() // 1_000_000, "m": METRICS}
                    for i in range(first, min(n, first + per_message))
                ]
                infos.append(client.publish(topic, orjson.dumps({"entries": entries}), qos=1))
        enqueued = time.time() - start
        for info in infos:
            info.wait_for_publish(60)
        acked = time.time() - start
        report = result()
        client.loop_stop()
        client.disconnect()
    return {
        "n": n,
        "enqueue_rate": n / enqueued,
        "acked_rate": n / acked,
        "arrived": report["distinct"],
        "e2e_rate": report["distinct"] / (report["last"] - start),
    }


# ----------------------------------------------------------------------------- 3. end to end


def bench_fleetcare_e2e(
    broker: MosquittoBroker, workdir: Path, n: int, backlog: bool
) -> dict[str, Any]:
    """fleetcare QoS 1, counted at a subscriber. ``backlog``: queue n offline, then drain."""
    queue = workdir / f"q-e2e-{backlog}"
    topic = f"{ROOT}/v1/+/telemetry"
    with subscriber(broker.port, topic, n, "fleetcare") as result:
        if backlog:
            with DeviceClient(device_config(dead_url(), queue)) as offline:
                offline.record_many([(None, METRICS)] * 1)  # touch
                for _ in range((n - 1) // 1000):
                    offline.record_many([(None, METRICS)] * 1000)
                remaining = n - 1 - ((n - 1) // 1000) * 1000
                if remaining:
                    offline.record_many([(None, METRICS)] * remaining)
        config = device_config(broker.url, queue)
        with DeviceClient(config) as client:
            start = time.time()
            if not backlog:
                client.wait_connected(5)
                start = time.time()
                for i in range(n):
                    client.record(
                        {
                            "temp_c": 20.0 + (i & 7),
                            "rpm": 1450.0,
                            "current_a": 3.2,
                            "vibration_mm_s": 0.8,
                        }
                    )
            recorded = time.time() - start
            client.flush(120)
            acked = time.time() - start
            report = result()
            health = client.health()
    return {
        "record_rate": n / recorded if not backlog else None,
        "acked_rate": n / acked,
        "arrived": report["distinct"],
        "messages": report["messages"],
        "e2e_rate": report["distinct"] / (report["last"] - start),
        "sent": health.sent,
    }


# ----------------------------------------------------------------------------- 4. memory


def measure_rss(kind: str, url: str, queue: Path, n: int = 0) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_sdk.rss_probe", kind, url, str(queue), str(n)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------------- 5. wire


def bench_wire(entries: int = 500, rounds: int = 30) -> dict[str, Any]:
    """Sizes and codec rates for one telemetry batch of plausible (noisy) readings."""
    rng = random.Random(42)
    bodies = [
        (
            seq,
            orjson.dumps(
                {
                    "t": 1_795_000_000_000 + seq * 1000,
                    "u": 2_000_000 + seq * 1000,
                    "m": {
                        "temp_c": round(21 + rng.gauss(0, 0.5), 2),
                        "rpm": round(1450 + rng.gauss(0, 20), 1),
                        "current_a": round(3.2 + rng.gauss(0, 0.1), 3),
                        "vibration_mm_s": round(abs(rng.gauss(0.8, 0.2)), 3),
                    },
                }
            ),
        )
        for seq in range(1, entries + 1)
    ]
    payload = encode_batch(
        device="bench-1",
        kind=BatchKind.TELEMETRY,
        boot="7ad7dfd967cf4d57",
        sent=1_795_000_000_000,
        up=2_000_000,
        dropped=0,
        entries=bodies,
    )

    def rate(fn: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(5):  # best of five: the machine may be shared
            start = time.perf_counter()
            for _ in range(rounds):
                fn()
            best = min(best, time.perf_counter() - start)
        return rounds * entries / best

    fast = rate(lambda: decode_batch(payload))
    model = rate(lambda: decode_model(payload, TelemetryBatch))
    encode = rate(
        lambda: encode_batch(
            device="bench-1",
            kind=BatchKind.TELEMETRY,
            boot="b",
            sent=1,
            up=1,
            dropped=0,
            entries=bodies,
        )
    )
    z1 = zlib.compress(payload, 1)
    start = time.perf_counter()
    for _ in range(rounds):
        zlib.compress(payload, 1)
    zlib_us = (time.perf_counter() - start) / rounds / entries * 1e6
    start = time.perf_counter()
    for _ in range(rounds):
        zlib.decompress(z1)
    unzip_us = (time.perf_counter() - start) / rounds / entries * 1e6
    return {
        "bytes_per_reading": len(payload) / entries,
        "zlib_bytes_per_reading": len(z1) / entries,
        "zlib_us_per_reading": zlib_us,
        "unzip_us_per_reading": unzip_us,
        "decode_fast": fast,
        "decode_model": model,
        "encode": encode,
    }


# ----------------------------------------------------------------------------- main


def run_all(
    broker: MosquittoBroker, workdir: Path, n_record: int, n_e2e: int, n_paho: int, scale: float
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    rows["write_offline"] = bench_record(workdir, n_record, "write")
    rows["write_online"] = bench_record(workdir, n_record, "write", url=broker.url)
    rows["fsync_1"] = bench_record(workdir, int(5_000 * scale) or 500, "fsync")
    rows["fsync_8"] = bench_record(workdir, int(16_000 * scale) or 1600, "fsync", threads=8)
    rows["record_many"] = bench_record_many(workdir, n_record, 100)
    rows["paho_enqueue"] = bench_paho_enqueue(min(n_record, 60_000))
    rows["paho_e2e_1"] = bench_paho_e2e(broker, n_paho, 1)
    rows["paho_e2e_500"] = bench_paho_e2e(broker, n_e2e, 500)
    rows["sdk_e2e"] = bench_fleetcare_e2e(broker, workdir, n_e2e, backlog=False)
    rows["sdk_drain"] = bench_fleetcare_e2e(broker, workdir, n_e2e, backlog=True)
    rows["rss_python"] = measure_rss("python", "", workdir)
    rows["rss_sdk_import"] = measure_rss("sdk-import", broker.url, workdir / "q-rss-import")
    rows["rss_idle"] = measure_rss("sdk-idle", broker.url, workdir / "q-rss-idle")
    rows["rss_queued"] = measure_rss("sdk-queued", dead_url(), workdir / "q-rss-100k", 100_000)
    rows["rss_paho_import"] = measure_rss("paho-import", "", workdir)
    rows["rss_paho_idle"] = measure_rss("paho-idle", broker.url, workdir)
    rows["rss_paho_queued"] = measure_rss("paho-queued", "", workdir, 60_000)
    rows["wire"] = bench_wire()
    return rows


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-figure median over repeated runs (dicts nested like one run)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_of([run[key] for run in runs]) for key in first}
    if isinstance(first, int | float) and not isinstance(first, bool):
        return statistics.median(runs)
    return first


def fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", default="main", choices=["main", "subscriber"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--topic", default="")
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--mode", default="fleetcare")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; each figure is the median")
    args = parser.parse_args(argv)
    if args.role == "subscriber":
        run_subscriber(args.port, args.topic, args.expected, args.mode)
        return 0

    scale = 0.2 if args.quick else 1.0
    n_record = int(200_000 * scale)
    n_e2e = int(200_000 * scale)
    n_paho = int(50_000 * scale)
    workdir = Path(tempfile.mkdtemp(prefix="fleetcare-bench-sdk-"))
    broker = MosquittoBroker(workdir / "broker", broker_config())
    broker.start()
    runs: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        for repetition in range(args.repeat):
            run_dir = workdir / f"run-{repetition}"
            run_dir.mkdir()
            runs.append(run_all(broker, run_dir, n_record, n_e2e, n_paho, scale))
        elapsed = time.time() - t0
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = median_of(runs)
    print_report(rows, elapsed, args.quick, args.repeat)
    return 0


def print_report(r: dict[str, Any], elapsed: float, quick: bool, repeat: int) -> None:
    cpu = os.cpu_count()
    print(
        f"\n## device_sdk\n\nMeasured by `python -m benchmarks.device_sdk.bench_sdk`"
        f"{' --quick' if quick else ''}{f' --repeat {repeat}' if repeat > 1 else ''} "
        f"({'median of ' + str(repeat) + ' runs, ' if repeat > 1 else ''}{elapsed:.0f} s) "
        f"on {cpu} cores, Python "
        f"{sys.version.split()[0]}, paho-mqtt {version('paho-mqtt')},"
        " a private mosquitto on loopback. Readings have 4 metrics.\n"
    )
    print("### record() into the durable queue\n")
    print("| path | guarantee when it returns | readings/s | p50 µs | p99 µs | p99.9 µs | max µs |")
    print("|---|---|---:|---:|---:|---:|---:|")

    def line(name: str, guarantee: str, row: dict[str, Any]) -> None:
        lat = row["lat"]
        print(
            f"| {name} | {guarantee} | {fmt_rate(row['rate'])} | {lat['p50']:.1f} | "
            f"{lat['p99']:.1f} | {lat['p999']:.1f} | {lat['max']:.0f} |"
        )

    line(
        "fleetcare `record()`, durability=write, broker unreachable",
        "written to the queue file: survives a process crash / SIGKILL",
        r["write_offline"],
    )
    line("fleetcare `record()`, durability=write, while publishing", "same", r["write_online"])
    line(
        "fleetcare `record()`, durability=fsync, 1 thread",
        "fdatasync'd: survives power loss",
        r["fsync_1"],
    )
    line("fleetcare `record()`, durability=fsync, 8 threads (group commit)", "same", r["fsync_8"])
    line(
        "bare paho `publish(qos=1)` while offline (in-memory queue)",
        "nothing: lost on crash, restart or >65,535 queued",
        r["paho_enqueue"],
    )
    print(
        f"| fleetcare `record_many()`, 100 readings a call, durability=write | same as write |"
        f" {fmt_rate(r['record_many'])} | | | | |"
    )
    ratio = r["write_offline"]["rate"] / r["paho_enqueue"]["rate"]
    print(
        f"\nfleetcare record() (durable) / bare paho publish() (in memory): **{ratio:.1f}x** "
        f"the rate.\n"
    )

    print("### End to end, QoS 1 to mosquitto, counted at a subscriber in another process\n")
    print(
        "| sender | readings sent | distinct arrived | sender readings/s | acked readings/s |"
        " arrived readings/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    e2e, drain = r["sdk_e2e"], r["sdk_drain"]
    p1, p500 = r["paho_e2e_1"], r["paho_e2e_500"]
    n_e2e = e2e["sent"]
    print(
        f"| fleetcare, record() while connected (batches of ≤500) | {n_e2e:,} | "
        f"{e2e['arrived']:,} | {fmt_rate(e2e['record_rate'])} | {fmt_rate(e2e['acked_rate'])} |"
        f" {fmt_rate(e2e['e2e_rate'])} |"
    )
    print(
        f"| fleetcare, draining a backlog queued offline | {drain['sent']:,} | "
        f"{drain['arrived']:,} | – | {fmt_rate(drain['acked_rate'])} | "
        f"{fmt_rate(drain['e2e_rate'])} |"
    )
    print(
        f"| bare paho, one reading per message | {p1['n']:,} | {p1['arrived']:,} | "
        f"{fmt_rate(p1['enqueue_rate'])} | {fmt_rate(p1['acked_rate'])} | "
        f"{fmt_rate(p1['e2e_rate'])} |"
    )
    print(
        f"| bare paho, 500 readings per message (in memory) | {p500['n']:,} | "
        f"{p500['arrived']:,} | {fmt_rate(p500['enqueue_rate'])} | "
        f"{fmt_rate(p500['acked_rate'])} | {fmt_rate(p500['e2e_rate'])} |"
    )
    print(
        f"\nArrived readings/s, fleetcare recording live / paho one reading per message: "
        f"**{e2e['e2e_rate'] / p1['e2e_rate']:.1f}x**. Publishing capacity, fleetcare draining "
        f"its disk queue / paho sending pre-built in-memory batches: "
        f"**{drain['acked_rate'] / p500['acked_rate']:.2f}x** acknowledged, "
        f"**{drain['e2e_rate'] / p500['e2e_rate']:.2f}x** arrived.\n"
    )

    print("### Resident memory (fresh process each)\n")
    print("| process | RSS MiB |")
    print("|---|---:|")
    print(f"| python interpreter alone | {r['rss_python']['rss']:.1f} |")
    print(
        f"| `import device_sdk` (with paho, pydantic, orjson) | {r['rss_sdk_import']['rss']:.1f} |"
    )
    print(f"| fleetcare client, connected, idle | {r['rss_idle']['rss']:.1f} |")
    print(
        f"| fleetcare client holding {r['rss_queued']['queued']:,} queued readings (on disk) |"
        f" {r['rss_queued']['rss']:.1f} |"
    )
    print(f"| `import paho.mqtt.client, orjson` | {r['rss_paho_import']['rss']:.1f} |")
    print(f"| bare paho client, connected, idle | {r['rss_paho_idle']['rss']:.1f} |")
    print(
        f"| bare paho client holding 60,000 queued messages (in memory) |"
        f" {r['rss_paho_queued']['rss']:.1f} |"
    )

    w = r["wire"]
    print("\n### Wire format (500-reading telemetry batch)\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| JSON bytes per reading (4 metrics, seq, t, u) | {w['bytes_per_reading']:.1f} |")
    print(f"| zlib level 1 bytes per reading | {w['zlib_bytes_per_reading']:.1f} |")
    print(
        f"| zlib level 1 CPU per reading, compress / decompress | "
        f"{w['zlib_us_per_reading']:.2f} / {w['unzip_us_per_reading']:.2f} µs |"
    )
    print(f"| `encode_batch` (splice stored bodies) readings/s | {fmt_rate(w['encode'])} |")
    print(f"| `decode_batch` (orjson fast path) readings/s | {fmt_rate(w['decode_fast'])} |")
    print(
        f"| `decode_model(TelemetryBatch)` (pydantic) readings/s | {fmt_rate(w['decode_model'])} |"
    )
    print()


if __name__ == "__main__":
    raise SystemExit(main())
