"""Live runs through the device SDK against a private broker, with and without faults."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from firmware_sim import SimConfig, generate
from firmware_sim.faults import FAULT_KINDS, FaultSpec, plan_faults, read_fault_log
from firmware_sim.fleet import build_fleet

pytest.importorskip("device_sdk")
from device_sdk import wire
from device_sdk.wire import PayloadError


class Collector:
    """Subscribes to every uplink batch channel of a topic root and keeps the raw payloads."""

    def __init__(self, url: str, root: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"collect-{root}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.connect(host, int(port))
        self.client.subscribe([(f"{root}/v1/+/{c}", 1) for c in ("telemetry", "usage", "events")])
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def settle(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = -1
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            with self._lock:
                if len(self.messages) == last:
                    return
                last = len(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def decoded(self) -> tuple[list[tuple[str, Any]], int]:
        good, bad = [], 0
        for topic, payload in self.messages:
            channel = topic.rsplit("/", 1)[1]
            try:
                good.append((channel, wire.decode_batch(payload)))
            except PayloadError:
                bad += 1
        return good, bad


def _run(
    tmp_path: Path,
    url: str,
    root: str,
    config: SimConfig,
    spec: FaultSpec,
    duration_s: float,
    history_days: int = 0,
) -> tuple[Any, Collector]:
    from firmware_sim.live import LiveOptions, run_live

    collector = Collector(url, root)
    options = LiveOptions(
        broker_urls=(url,),
        queue_dir=tmp_path / "queues",
        truth_dir=tmp_path / "truth",
        topic_root=root,
        speed=0.0,
        duration_s=duration_s,
        faults=spec,
        real_start=False,
        history_days=history_days,
    )
    try:
        report = run_live(config, options)
        collector.settle()
    finally:
        collector.close()
    return report, collector


@pytest.mark.services
def test_live_run_sends_exactly_what_generate_writes(
    tmp_path: Path, mosquitto: Any, topic_root: str
) -> None:
    config = SimConfig(devices=5, days=1, seed=4)
    report, collector = _run(
        tmp_path, mosquitto.url, f"{topic_root}/clean", config, FaultSpec(), duration_s=24 * 3600
    )
    assert report.readings == 5 * 1440 and report.undelivered == 0
    batches, bad = collector.decoded()
    assert bad == 0
    readings: dict[tuple[str, int], dict[str, float | None]] = {}
    seqs: Counter[tuple[str, int]] = Counter()
    usage: dict[tuple[str, str], float] = {}
    for channel, batch in batches:
        if channel == "telemetry":
            for entry in batch.entries:
                readings[(batch.device, entry["t"])] = entry["m"]
                seqs[(batch.device, entry["seq"])] += 1
        elif channel == "usage":
            for entry in batch.entries:
                usage[(batch.device, entry["name"])] = entry.get("value")
    assert len(seqs) == report.readings
    generate(config, tmp_path / "gen")
    table = ds.dataset(tmp_path / "gen" / "telemetry").to_table()
    devices = pc.cast(table["device_id"], pa.string()).to_pylist()
    times = table["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64).tolist()
    assert len(devices) == report.readings
    for name in ("motor_current_a", "vibration_rms_mm_s", "ambient_temp_c"):
        for device, t, value in zip(devices, times, table[name].to_pylist(), strict=True):
            sent = readings[(device, t)].get(name)
            if value is None or np.isnan(value):
                assert sent is None
            else:
                assert sent == pytest.approx(value, abs=1e-4)
    daily = pq.read_table(tmp_path / "gen" / "usage" / "usage.parquet").to_pylist()
    assert len(daily) == 5
    for row in daily:
        for name in ("operating_hours", "sessions", "starts"):
            assert usage[(row["device_id"], name)] == pytest.approx(row[name], abs=1e-3)


@pytest.mark.services
def test_a_span_after_history_days_continues_the_physics_and_publishes_none_of_them(
    tmp_path: Path, mosquitto: Any, topic_root: str
) -> None:
    config = SimConfig(devices=4, days=1, seed=9, interval_s=600)
    report, collector = _run(
        tmp_path,
        mosquitto.url,
        f"{topic_root}/history",
        config,
        FaultSpec(),
        duration_s=86_400,
        history_days=2,
    )
    assert report.readings == 4 * 144 and report.undelivered == 0
    batches, bad = collector.decoded()
    assert bad == 0
    sent: dict[tuple[str, int], dict[str, float | None]] = {}
    for channel, batch in batches:
        if channel == "telemetry":
            sent.update({(batch.device, e["t"]): e["m"] for e in batch.entries})
    span_ms = int((config.start_at.timestamp() + 2 * 86_400) * 1000)
    assert len(sent) == report.readings and min(t for _, t in sent) == span_ms
    # The third day of one simulation from the start: the devices' wear went on meanwhile.
    generate(config.model_copy(update={"days": 3}), tmp_path / "gen")
    table = ds.dataset(tmp_path / "gen" / "telemetry").to_table()
    times = table["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64).tolist()
    devices = pc.cast(table["device_id"], pa.string()).to_pylist()
    values = table["vibration_rms_mm_s"].to_pylist()
    compared = 0
    for device, t, value in zip(devices, times, values, strict=True):
        if t < span_ms:
            assert (device, t) not in sent
            continue
        got = sent[(device, t)].get("vibration_rms_mm_s")
        assert got is None if value is None or np.isnan(value) else got == pytest.approx(value)
        compared += 1
    assert compared == report.readings


@pytest.mark.services
def test_fault_injection_produces_exactly_the_faults_asked_for(
    tmp_path: Path, mosquitto: Any, topic_root: str
) -> None:
    spec = FaultSpec(
        device_outage=2,
        site_outage=1,
        duplicate=3,
        malformed=4,
        out_of_order=2,
        clock_skew=1,
        reboot=1,
    )
    config = SimConfig(devices=8, accounts=2, days=1, seed=8)
    report, collector = _run(
        tmp_path, mosquitto.url, f"{topic_root}/faults", config, spec, duration_s=4 * 3600
    )
    log = read_fault_log(tmp_path / "truth" / "faults.jsonl")
    asked = {kind: getattr(spec, kind) for kind in FAULT_KINDS}
    assert Counter(r.kind for r in log) == Counter(asked)
    assert report.faults == asked
    batches, bad = collector.decoded()
    assert bad == spec.malformed
    by_device: dict[str, list[tuple[int, int]]] = defaultdict(list)
    copies: Counter[tuple[str, int]] = Counter()
    events: list[tuple[str, str]] = []
    for channel, batch in batches:
        if channel == "telemetry":
            for entry in batch.entries:
                copies[(batch.device, entry["seq"])] += 1
                by_device[batch.device].append((entry["seq"], entry["t"]))
        elif channel == "events":
            events += [(batch.device, e["type"]) for e in batch.entries]
    assert len(copies) == report.readings
    assert report.undelivered == 0
    for record in (r for r in log if r.kind == "duplicate"):
        seq = int(record.detail.split()[1])
        assert copies[(record.device_ids[0], seq)] >= 2
    start_ms = int(config.start_at.timestamp() * 1000)
    for record in (r for r in log if r.kind == "out_of_order"):
        entries = sorted(set(by_device[record.device_ids[0]]))
        t_held = start_ms + record.step * 60_000
        held = [seq for seq, t in entries if t == t_held]
        newer = [seq for seq, t in entries if t == t_held + 60_000]
        assert held and newer and held[0] > newer[0], record
    skewed = {r.device_ids[0]: r for r in log if r.kind == "clock_skew"}
    for device, entries in by_device.items():
        off_grid = [t for _, t in entries if (t - start_ms) % 60_000]
        assert bool(off_grid) == (device in skewed and skewed[device].skew_s % 60 != 0)
    rebooted = [r.device_ids[0] for r in log if r.kind == "reboot"]
    assert Counter(d for d, kind in events if kind == "reboot") == Counter(rebooted)


def test_fault_plan_has_exact_counts() -> None:
    fleet = build_fleet(SimConfig(devices=30, seed=1))
    spec = FaultSpec(
        device_outage=5,
        site_outage=2,
        duplicate=7,
        malformed=1,
        out_of_order=3,
        clock_skew=2,
        reboot=4,
    )
    plan = plan_faults(1, spec, fleet, 500)
    assert Counter(f.kind for f in plan) == Counter({k: getattr(spec, k) for k in FAULT_KINDS})
    assert all(0 <= f.step < 500 for f in plan)
    sites = {d.site_id: set() for d in fleet.devices}
    for d in fleet.devices:
        sites[d.site_id].add(d.device_id)
    for fault in plan:
        if fault.kind == "site_outage":
            assert set(fault.device_ids) == sites[fault.site_id]
    assert plan == plan_faults(1, spec, fleet, 500)


@pytest.mark.services
def test_cli_run(tmp_path: Path, mosquitto: Any, topic_root: str) -> None:
    from typer.testing import CliRunner

    from firmware_sim.cli import app

    collector = Collector(mosquitto.url, f"{topic_root}/cli")
    try:
        result = CliRunner().invoke(
            app, _cli_run_args(mosquitto.url, tmp_path, topic_root, '{"malformed": 1, "reboot": 1}')
        )
        collector.settle()
    finally:
        collector.close()
    assert result.exit_code == 0, result.output
    log = read_fault_log(tmp_path / "truth" / "faults.jsonl")
    assert Counter(r.kind for r in log) == Counter({"malformed": 1, "reboot": 1})
    assert (tmp_path / "truth" / "failures.parquet").is_file()
    summary = json.loads(result.output[result.output.rindex('{"readings"') :])
    assert summary["readings"] == 90 and summary["undelivered"] == 0
    batches, bad = collector.decoded()
    assert bad == 1
    sent = {
        (b.device, e["seq"]) for channel, b in batches if channel == "telemetry" for e in b.entries
    }
    assert len(sent) == 90


@pytest.mark.services
def test_cli_run_says_what_the_broker_did_not_take(
    tmp_path: Path, mosquitto: Any, topic_root: str
) -> None:
    from typer.testing import CliRunner

    from firmware_sim.cli import app

    args = _cli_run_args(mosquitto.url, tmp_path, f"{topic_root}/nobody")
    result = CliRunner().invoke(app, [*args, "--flush-timeout", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "were not taken by the broker within 1 s" in text
    assert "with the same --queue-dir" in text
    summary = json.loads(result.output[result.output.rindex('{"readings"') :])
    assert summary["undelivered"] > 0


@pytest.mark.services
def test_cli_run_stops_within_seconds_on_sigterm_and_says_what_stays_queued(
    tmp_path: Path, mosquitto: Any, topic_root: str
) -> None:
    import signal
    import subprocess
    import sys

    args = _cli_run_args(mosquitto.url, tmp_path, topic_root)
    args[args.index("--speed") + 1] = "60"  # a simulated day: 24 minutes of wall time
    args[args.index("--duration") + 1] = "1d"
    collector = Collector(mosquitto.url, f"{topic_root}/cli")
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while not collector.messages:
            assert process.poll() is None and time.monotonic() < deadline, "nothing was sent"
            time.sleep(0.2)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        stopped_s = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        collector.close()
    assert process.returncode == 130, output
    assert stopped_s < 10, f"took {stopped_s:.1f} s to stop"
    text = " ".join(output.split())
    assert "stopped before the end of the span" in text
    assert "goes out on the next run with the same --queue-dir" in text


def _cli_run_args(url: str, tmp_path: Path, topic_root: str, faults: str = "{}") -> list[str]:
    """``sim run`` of 3 devices over 30 simulated minutes at full speed, with ``faults``."""
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(faults)
    return [
        "run",
        "--broker",
        url,
        "--devices",
        "3",
        "--speed",
        "0",
        "--duration",
        "30m",
        "--start",
        "2025-03-01",
        "--queue-dir",
        str(tmp_path / "q"),
        "--truth-dir",
        str(tmp_path / "truth"),
        "--topic-root",
        f"{topic_root}/cli",
        "--faults",
        str(faults_file),
    ]


@pytest.mark.services
def test_shards_split_the_fleet(tmp_path: Path, mosquitto: Any, topic_root: str) -> None:
    from firmware_sim.live import LiveOptions, run_live

    config = SimConfig(devices=7, days=1, seed=6)
    root = f"{topic_root}/shards"
    collector = Collector(mosquitto.url, root)
    try:
        for index in (0, 1):
            options = LiveOptions(
                broker_urls=(mosquitto.url,),
                queue_dir=tmp_path / f"q{index}",
                truth_dir=tmp_path / f"t{index}",
                topic_root=root,
                speed=0.0,
                duration_s=3600,
                real_start=False,
                shard=(index, 2),
            )
            run_live(config, options)
        collector.settle()
    finally:
        collector.close()
    batches, _ = collector.decoded()
    seen = {(b.device, e["t"]) for c, b in batches if c == "telemetry" for e in b.entries}
    devices = {d.device_id for d in build_fleet(config).devices}
    assert {d for d, _ in seen} == devices
    assert len(seen) == 7 * 60


def test_too_many_clients_for_one_process_is_refused(tmp_path: Path) -> None:
    from firmware_sim import SimConfigError
    from firmware_sim.live import LiveOptions, run_live

    options = LiveOptions(
        broker_urls=("mqtt://127.0.0.1:1",),
        queue_dir=tmp_path / "q",
        truth_dir=tmp_path / "t",
        speed=0.0,
        duration_s=600,
        real_start=False,
        max_clients=5,
    )
    with pytest.raises(SimConfigError, match="--shard"):
        run_live(SimConfig(devices=12, days=1, seed=1), options)


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    from firmware_sim import SimError
    from firmware_sim.live import LiveOptions, run_live

    options = LiveOptions(
        broker_urls=("mqtt://127.0.0.1:1",),
        queue_dir=tmp_path / "q",
        truth_dir=tmp_path / "t",
        speed=0.0,
        duration_s=600,
        real_start=False,
        connect_timeout_s=1.0,
    )
    started = time.monotonic()
    with pytest.raises(SimError, match="could not connect"):
        run_live(SimConfig(devices=3, days=1, seed=1), options)
    assert time.monotonic() - started < 15
