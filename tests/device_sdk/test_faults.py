"""Acceptance: faults against a real Mosquitto, counting what arrived (not just timing it).

* the broker stopped mid-stream and restarted: every accepted reading arrives exactly once
  after deduplication on (device, seq);
* the device process killed with SIGKILL mid-stream and restarted: every reading accepted
  before the kill arrives, and the sequence continues without reuse;
* the disk bound reached during an outage: oldest dropped first, the count reported after
  reconnect, no crash and no blocking.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from device_sdk import DROPPED_EVENT, DeviceClient, DeviceConfig
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.device_sdk.conftest import Collector

pytestmark = [pytest.mark.services, pytest.mark.slow]

CollectorFactory = Callable[[MosquittoBroker, str], Collector]
REPO = Path(__file__).resolve().parents[2]


def test_broker_restart_mid_stream_loses_nothing(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    accepted: list[int] = []
    stop = threading.Event()
    with DeviceClient(make_config(broker.url, batch_max_entries=100)) as client:
        client.wait_connected(5)

        def produce() -> None:
            i = 0
            while not stop.is_set():
                accepted.append(client.record({"counter": float(i), "temp_c": 20.5}))
                i += 1
                if i % 50 == 0:
                    time.sleep(0.001)  # ~20-40k readings/s: a busy device, not a benchmark

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(0.5)
        broker.stop()  # mid-stream: batches in flight, entries queued
        during_outage = len(accepted)
        time.sleep(1.0)
        broker.start()
        time.sleep(0.5)
        stop.set()
        producer.join()
        client.flush(30)
        health = client.health()
    assert len(accepted) > during_outage > 1000  # recording went on during the outage
    collector.wait_for(lambda: collector.seqs("dev-1") >= set(accepted), timeout=20)
    assert collector.seqs("dev-1") == set(accepted)  # exactly once after dedup
    assert collector.errors == []
    assert health.reconnects >= 1 and health.dropped == 0 and health.queued == 0
    print(f"accepted={len(accepted)} duplicates_before_dedup={collector.duplicates()}")


def _read_seqs(
    process: subprocess.Popen[bytes], until: Callable[[list[int]], bool], timeout: float
) -> tuple[list[int], list[bytes]]:
    """Read stdout lines until ``until(seqs)`` or EOF; returns seqs and other lines."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seqs: list[int] = []
    other: list[bytes] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(seqs):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            (seqs.append(int(line)) if line.isdigit() else other.append(line))
    return seqs, other


def _spawn(broker: MosquittoBroker, queue: Path, root: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.device_sdk.device_process",
            broker.url,
            str(queue),
            root,
            "--count",
            str(count),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_sigkill_mid_stream_then_restart(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    tmp_path: Path,
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    queue = tmp_path / "device-queue"
    first = _spawn(broker, queue, topic_root, count=0)
    try:
        # Let it publish for a while, then kill it with batches in flight and entries queued.
        before, _ = _read_seqs(first, lambda s: len(s) >= 30_000, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        rest, _ = _read_seqs(first, lambda _s: False, timeout=5)  # what was still in the pipe
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        assert first.stdout is not None
        first.stdout.close()
    accepted_before_kill = before + rest
    assert len(accepted_before_kill) >= 30_000
    assert accepted_before_kill == list(range(1, len(accepted_before_kill) + 1))

    second = _spawn(broker, queue, topic_root, count=2_000)
    try:
        after, lines = _read_seqs(second, lambda _s: False, timeout=60)
        assert second.wait(30) == 0 and b"FLUSHED" in lines
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
        assert second.stdout is not None
        second.stdout.close()
    assert len(after) == 2_000
    assert min(after) > max(accepted_before_kill)  # the sequence continues, nothing reused

    every = set(accepted_before_kill) | set(after)
    collector.wait_for(lambda: collector.seqs("dev-kill") >= every, timeout=20)
    missing = set(accepted_before_kill) - collector.seqs("dev-kill")
    assert not missing, f"{len(missing)} accepted readings lost, e.g. {sorted(missing)[:5]}"
    assert collector.errors == []
    print(
        f"accepted_before_kill={len(accepted_before_kill)} after_restart={len(after)} "
        f"duplicates_before_dedup={collector.duplicates()}"
    )


def test_disk_bound_during_outage_drops_oldest_and_reports(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    config = make_config(broker.url, queue_max_bytes=1024 * 1024, queue_segment_bytes=64 * 1024)
    with DeviceClient(config) as client:
        client.wait_connected(5)
        broker.stop()
        accepted: list[int] = []
        slowest = 0.0
        for i in range(40_000):  # ~4 MB of readings into a 1 MiB queue
            start = time.perf_counter()
            accepted.append(client.record({"counter": float(i), "temp_c": 20.5}))
            slowest = max(slowest, time.perf_counter() - start)
        during = client.health()
        broker.start()
        client.wait_connected(10)
        client.flush(30)
        after = client.health()

    assert slowest < 0.25, f"record() blocked for {slowest:.3f} s"
    assert during.dropped > 20_000 and during.queue_fill <= 1.0 and not during.connected
    dropped = after.dropped
    collector.wait_for(lambda: after.last_seq in collector.seqs("dev-1"))
    arrived = collector.seqs("dev-1")
    accepted_set = set(accepted)
    readings = sorted(arrived & accepted_set)
    lost = sorted(accepted_set - arrived)
    # Oldest first: everything dropped is older than everything that arrived.
    assert lost and readings and max(lost) < min(readings)
    newest_dropped = max(lost)
    assert all(s in arrived for s in accepted if s > newest_dropped)  # the newest all arrived
    # The drop reports (sdk.dropped events) account for every dropped entry, by seq range.
    reports = collector.events("dev-1", DROPPED_EVENT)
    reported = sum(r["attrs"]["count"] for r in reports)
    assert reported == dropped
    covered = {
        s for r in reports for s in range(r["attrs"]["first_seq"], r["attrs"]["last_seq"] + 1)
    }
    assert set(lost) <= covered
    # ... and every batch sent after reconnect carries the cumulative count.
    assert max(b["dropped"] for b in collector.batches) == dropped
    print(
        f"accepted={len(accepted)} dropped={dropped} arrived={len(readings)} "
        f"slowest_record_ms={slowest * 1000:.2f}"
    )
