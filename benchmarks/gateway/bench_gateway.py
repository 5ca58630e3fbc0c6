"""Gateway benchmark: durable store-and-forward side by side with a bare paho forwarder.

    .venv/bin/python -m benchmarks.gateway.bench_gateway [--quick]

Both forwarders run as a process pinned to one CPU core, between two private mosquittos
(local and central, persistence off, deliberate queue limits). The workload is SDK-format
telemetry: 20 devices, 500 readings of 4 metrics per message, published QoS 1 to the local
broker by this process. What arrives at the central broker is **counted** by a separate
process (distinct (device, seq)), not just timed.

1. Throughput: readings/s from the first publish to the last distinct reading arriving
   upstream, and the forwarder's CPU seconds (user + system) per million readings.
2. Memory: the central broker unreachable, 1,000,000 readings pushed through the forwarder;
   its RSS (VmRSS) idle and after every quarter.

Prints Markdown tables for ``docs/benchmarks/gateway.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk.wire import BatchKind, encode_batch
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from fleetcare.embedded.ports import free_tcp_port

ROOT = "benchgw"
DEVICES = 20
PER_MESSAGE = 500
REPO = Path(__file__).resolve().parents[2]
CORE = 0


def payloads(readings: int) -> Iterator[tuple[str, bytes]]:
    """SDK-format telemetry batches, round-robin over the devices, seqs from 1."""
    t0 = 1_795_000_000_000
    next_seq = dict.fromkeys(range(DEVICES), 1)
    sent = 0
    while sent < readings:
        for device in range(DEVICES):
            if sent >= readings:
                return
            n = min(PER_MESSAGE, readings - sent)
            first = next_seq[device]
            entries = [
                (seq, b'{"t":%d,"u":%d,"m":{"temp_c":21.5,"rpm":1450.0,"current_a":3.2,'
                 b'"vibration_mm_s":0.%d}}' % (t0 + seq * 100, seq * 100, seq % 10))
                for seq in range(first, first + n)
            ]  # fmt: skip
            next_seq[device] = first + n
            name = f"dev-{device:02d}"
            body = encode_batch(
                device=name, kind=BatchKind.TELEMETRY, boot="benchboot", sent=t0, up=1,
                dropped=0, entries=entries,
            )  # fmt: skip
            sent += n
            yield f"{ROOT}/v1/{name}/telemetry", body


def publish_all(port: int, readings: int) -> float:
    """Publish the workload QoS 1 with at most 20 messages in flight; returns the start time."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(20)
    client.connect("127.0.0.1", port)
    client.loop_start()
    messages = list(payloads(readings))
    start = time.time()
    pending: list[mqtt.MQTTMessageInfo] = []
    for topic, body in messages:
        pending.append(client.publish(topic, body, qos=1))
        if len(pending) >= 20:
            pending.pop(0).wait_for_publish(60)
    for info in pending:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    return start


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: pin(CORE),
    )


def read_line(process: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith(prefix):
                return line.strip()
            if not line:
                break
    raise TimeoutError(f"no {prefix!r} line within {timeout} s")


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def brokers(workdir: Path) -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    config = MosquittoConfig(persistence=False)
    local, central = (
        MosquittoBroker(workdir / "local", config),
        MosquittoBroker(workdir / "central", config),
    )
    local.start()
    central.start()
    try:
        yield local, central
    finally:
        local.kill()
        central.kill()


def gateway_config(workdir: Path, local_port: int, central_port: int) -> Path:
    config = {
        "gateway_id": "gw-bench",
        "data_dir": str(workdir / "gateway-data"),
        "log_level": "WARNING",
        "uplink": {"url": f"mqtt://127.0.0.1:{central_port}", "topic_root": ROOT,
                   "state_interval_s": 0, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "local": {"url": f"mqtt://127.0.0.1:{local_port}", "topic_root": ROOT},
        "queue": {"max_bytes": 1024 * 1024 * 1024},
    }  # fmt: skip
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_forwarder(
    kind: str, workdir: Path, local_port: int, central_port: int
) -> subprocess.Popen[str]:
    if kind == "gateway":
        process = spawn(
            ["gateway", "run", "--config", str(gateway_config(workdir, local_port, central_port))]
        )
        time.sleep(3.0)  # imports and connections; no readiness line in the product's output
        return process
    process = spawn(
        ["benchmarks.gateway.naive_forwarder", str(local_port), str(central_port), ROOT]
    )
    read_line(process, "READY", 20)
    return process


def throughput(kind: str, readings: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-gw-{kind}-"))
    try:
        with brokers(workdir) as (local, central):
            counter = spawn(
                ["benchmarks.gateway.counter", str(central.port), ROOT, str(readings), "300"]
            )
            read_line(counter, "READY", 20)
            forwarder = start_forwarder(kind, workdir, local.port, central.port)
            cpu_before = cpu_s(forwarder.pid)
            try:
                start = publish_all(local.port, readings)
                done = read_line(counter, "DONE", 310).split()
                cpu = cpu_s(forwarder.pid) - cpu_before
            finally:
                stop(forwarder)
                stop(counter)
        last, distinct, duplicates = float(done[1]), int(done[2]), int(done[3])
        return {
            "readings": readings,
            "arrived": distinct,
            "duplicates": duplicates,
            "seconds": last - start,
            "rate": distinct / (last - start),
            "cpu_s_per_million": cpu / readings * 1e6,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def gateway_buffered(workdir: Path) -> int:
    try:
        meta = json.loads((workdir / "gateway-data" / "queue" / "queue.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(meta.get("next", 1)) - 1


def memory(kind: str, readings: int) -> dict[str, float]:
    """RSS of the forwarder while ``readings`` pile up with the central broker unreachable."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-gw-mem-{kind}-"))
    out: dict[str, float] = {}
    try:
        with brokers(workdir) as (local, _central):
            dead = free_tcp_port()
            forwarder = start_forwarder(kind, workdir, local.port, dead)
            received = 0

            def buffered() -> int:
                nonlocal received
                if kind == "gateway":
                    return gateway_buffered(workdir)
                assert forwarder.stdout is not None
                while select.select([forwarder.stdout], [], [], 0)[0]:
                    line = forwarder.stdout.readline()
                    if line.startswith("RECEIVED"):
                        received = int(line.split()[1]) * PER_MESSAGE
                return received

            try:
                time.sleep(1.0)
                out["idle"] = rss_mib(forwarder.pid)
                quarter = readings // 4
                for step in range(1, 5):
                    publish_more(local.port, quarter, (step - 1) * quarter)
                    deadline = time.monotonic() + 300
                    while buffered() < step * quarter and time.monotonic() < deadline:
                        time.sleep(0.2)
                    time.sleep(0.5)
                    out[f"{step * quarter}"] = rss_mib(forwarder.pid)
                out["buffered"] = buffered()
            finally:
                stop(forwarder)
        return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def publish_more(port: int, readings: int, offset: int) -> None:
    """Like :func:`publish_all`, with seqs continuing after ``offset`` readings."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(20)
    client.connect("127.0.0.1", port)
    client.loop_start()
    skip = offset // (PER_MESSAGE * DEVICES)
    pending: list[mqtt.MQTTMessageInfo] = []
    for index, (topic, body) in enumerate(payloads(offset + readings)):
        if index < skip * DEVICES:
            continue
        pending.append(client.publish(topic, body, qos=1))
        if len(pending) >= 20:
            pending.pop(0).wait_for_publish(60)
    for info in pending:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    args = parser.parse_args()
    readings = 100_000 if args.quick else 400_000
    buffered = 200_000 if args.quick else 1_000_000
    print(f"host: {os.cpu_count()} cores; forwarders pinned to core {CORE}\n")
    print(
        "| forwarder | readings | arrived (distinct) | duplicates | s | readings/s | CPU s per 1M |"
    )
    print("|---|---|---|---|---|---|---|")
    results = {}
    for kind in ("naive", "gateway"):
        r = results[kind] = throughput(kind, readings)
        row = (
            f"| {kind} | {r['readings']:,} | {r['arrived']:,} | {r['duplicates']:,} | "
            f"{r['seconds']:.2f} | {r['rate']:,.0f} | {r['cpu_s_per_million']:.1f} |"
        )
        print(row, flush=True)
    ratio = results["gateway"]["rate"] / results["naive"]["rate"]
    print(f"\ngateway / naive throughput: {ratio:.2f}\n")
    print(
        "| forwarder | idle MiB | "
        + " | ".join(f"{buffered * q // 4:,} buffered" for q in range(1, 5))
        + " |"
    )
    print("|---|---|---|---|---|---|")
    for kind in ("naive", "gateway"):
        m = memory(kind, buffered)
        cells = " | ".join(f"{m[str(buffered * q // 4)]:.1f}" for q in range(1, 5))
        print(
            f"| {kind} | {m['idle']:.1f} | {cells} |  (buffered: {m['buffered']:,.0f})", flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
