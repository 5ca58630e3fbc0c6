"""Faults with a real Mosquitto and PostgreSQL; ingest runs as a separate process.

In every case, after the run: distinct readings sent == rows stored, no duplicates, no loss.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from backend.ingest.loadgen import FleetPublisher, FleetSpec, register_fleet
from backend.storage.migrator import apply_migrations
from device_sdk import DeviceClient, DeviceConfig
from fleetcare.embedded.mosquitto import MosquittoBroker
from fleetcare.embedded.ports import free_tcp_port, free_tcp_port_run
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import ingest_process, scrape, stored, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


class PacedPublisher:
    """Publishes ``messages`` batches at ``rate`` per second in a thread."""

    def __init__(self, broker_url: str, root: str, spec: FleetSpec, messages: int, rate: float):
        self.pub = FleetPublisher(broker_url, root, spec, first_seq=1)
        self.messages = messages
        self.rate = rate
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.pub.publish(self.messages, rate=self.rate)

    def __enter__(self) -> PacedPublisher:
        self.pub.start()
        self.thread.start()
        return self

    def finish(self, timeout_s: float = 60) -> int:
        """Wait until everything is published and acknowledged by the broker; readings sent."""
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "publisher did not finish"
        assert self.pub.wait_acked(timeout_s), "broker did not acknowledge everything"
        return self.pub.readings_sent

    def __exit__(self, *exc: object) -> None:
        self.pub.stop()


def ingest_env(database_url: str, broker: MosquittoBroker, root: str, port: int) -> dict[str, str]:
    return {
        "FLEETCARE_DATABASE_URL": database_url,
        "FLEETCARE_BROKER_URL": broker.url,
        "FLEETCARE_TOPIC_ROOT": root,
        "FLEETCARE_INGEST_METRICS_PORT": str(port),
        "FLEETCARE_INGEST_CLIENT_ID_PREFIX": f"fault-{port}",
        "FLEETCARE_LOG_LEVEL": "INFO",
    }


def wait_metrics(port: int, timeout_s: float = 20) -> bool:
    def up() -> bool:
        try:
            return scrape(port).get("fleetcare_ingest_mqtt_connected") == 1.0
        except OSError:
            return False

    return wait_until(up, timeout_s, 0.2)


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ingest.log"
    yield path
    if path.exists():
        print(path.read_text()[-4000:])  # shown when the test fails


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_ingest_killed_mid_stream_and_restarted(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory, log_path: Path
) -> None:
    spec = fleet(devices=8, readings_per_message=10, metrics=("a", "b", "c"))
    port = free_tcp_port()
    env = ingest_env(ingest_db, mosquitto, root, port)
    first = ingest_process(env, log_path=log_path)
    assert wait_metrics(port)
    with PacedPublisher(mosquitto.url, root, spec, messages=1500, rate=250) as paced:
        time.sleep(2.5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(1.5)
        second = ingest_process(env, log_path=log_path)
        try:
            sent = paced.finish()
            assert wait_until(lambda: stored(ingest_db, spec).readings >= sent, 40)
            values = scrape(port)
        finally:
            stop(second)
    assert sent == 15_000
    assert stored(ingest_db, spec) == (sent, sent, sent)
    print("after restart:", {k: v for k, v in values.items() if "duplicate" in k or "dedup" in k})


def test_broker_restarted_mid_stream(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory, log_path: Path
) -> None:
    spec = fleet(devices=8, readings_per_message=10, metrics=("a", "b"))
    port = free_tcp_port()
    process = ingest_process(ingest_env(ingest_db, mosquitto, root, port), log_path=log_path)
    try:
        assert wait_metrics(port)
        with PacedPublisher(mosquitto.url, root, spec, messages=1500, rate=250) as paced:
            time.sleep(2.5)
            mosquitto.restart()
            sent = paced.finish()
            assert wait_until(lambda: stored(ingest_db, spec).readings >= sent, 40)
        values = scrape(port)
    finally:
        stop(process)
    assert stored(ingest_db, spec) == (sent, sent, sent)
    assert values['fleetcare_ingest_mqtt_connects_total{protocol="5"}'] >= 2


def test_database_unavailable_for_30_seconds(
    mosquitto: MosquittoBroker, root: str, log_path: Path
) -> None:
    from fleetcare.embedded.postgres import EmbeddedPostgres

    workdir = Path(tempfile.mkdtemp(prefix="fcpg-"))  # short: the socket lives there
    server = EmbeddedPostgres(workdir / "pg")
    server.start()
    try:
        database_url = server.fleetcare_url
        apply_migrations(database_url)
        spec = FleetSpec(prefix="outage", devices=8, readings_per_message=10, metrics=("a", "b"))
        register_fleet(database_url, spec)
        port = free_tcp_port()
        env = {
            **ingest_env(database_url, mosquitto, root, port),
            "FLEETCARE_INGEST_MAX_PENDING_MESSAGES": "500",
            "FLEETCARE_INGEST_BATCH_MAX_MESSAGES": "200",
        }
        process = ingest_process(env, log_path=log_path)
        try:
            assert wait_metrics(port)
            rss: list[float] = []
            pending: list[float] = []
            with PacedPublisher(mosquitto.url, root, spec, messages=4000, rate=100) as paced:
                time.sleep(3)
                server.stop()
                outage_end = time.monotonic() + 30
                while time.monotonic() < outage_end:
                    values = scrape(port)
                    pending.append(values["fleetcare_ingest_pending_messages"])
                    rss.append(psutil.Process(process.pid).memory_info().rss / 2**20)
                    assert process.poll() is None, "ingest died during the outage"
                    time.sleep(1)
                server.start()
                sent = paced.finish()
                assert wait_until(lambda: stored(database_url, spec).readings >= sent, 40)
            values = scrape(port)
        finally:
            stop(process)
        assert stored(database_url, spec) == (sent, sent, sent)
        assert max(pending) <= 500
        assert max(pending) >= 400, "the window should have filled during the outage"
        # The broker held the rest: its in-flight window (ReceiveMaximum = the bound) or the
        # receive loop waiting for room, whichever came first.
        assert values["fleetcare_ingest_pending_peak_messages"] <= 500
        assert max(rss) - min(rss) < 100, f"memory grew during the outage: {rss}"
        print(f"outage: pending max {max(pending):.0f}, rss {min(rss):.0f}-{max(rss):.0f} MiB")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_two_workers_one_killed(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory, log_path: Path
) -> None:
    spec = fleet(devices=8, readings_per_message=10, metrics=("a", "b"))
    port = free_tcp_port_run(2)  # worker 1 serves on port + 1
    supervisor = ingest_process(
        ingest_env(ingest_db, mosquitto, root, port), "--workers", "2", log_path=log_path
    )
    try:
        assert wait_metrics(port)
        assert wait_metrics(port + 1)
        workers = psutil.Process(supervisor.pid).children()
        assert len(workers) == 2
        with PacedPublisher(mosquitto.url, root, spec, messages=1500, rate=250) as paced:
            time.sleep(2.5)
            key = 'fleetcare_ingest_messages_received_total{channel="telemetry"}'
            both = [scrape(p).get(key, 0.0) for p in (port, port + 1)]
            os.kill(workers[1].pid, signal.SIGKILL)
            assert wait_until(lambda: len(psutil.Process(supervisor.pid).children()) == 2, 10)
            sent = paced.finish()
            assert wait_until(lambda: stored(ingest_db, spec).readings >= sent, 40)
        restarted = {w.pid for w in psutil.Process(supervisor.pid).children()}
    finally:
        stop(supervisor)
    assert min(both) > 0, f"both workers should have had messages before the kill: {both}"
    assert workers[1].pid not in restarted
    assert stored(ingest_db, spec) == (sent, sent, sent)


def test_two_workers_broker_restarted_mid_stream(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory, log_path: Path
) -> None:
    """Two workers (``auto``: partitioned subscriptions), the broker (with persistence)
    restarted mid-stream: plain subscriptions come back with the sessions, so nothing
    published after the restart finds the workers unsubscribed."""
    spec = fleet(devices=8, readings_per_message=10, metrics=("a", "b"))
    port = free_tcp_port_run(2)  # worker 1 serves on port + 1
    supervisor = ingest_process(
        ingest_env(ingest_db, mosquitto, root, port), "--workers", "2", log_path=log_path
    )
    try:
        assert wait_metrics(port)
        assert wait_metrics(port + 1)
        with PacedPublisher(mosquitto.url, root, spec, messages=1500, rate=250) as paced:
            time.sleep(2.5)
            mosquitto.restart()
            sent = paced.finish()
            assert wait_until(lambda: stored(ingest_db, spec).readings >= sent, 40)
        values = [scrape(p) for p in (port, port + 1)]
    finally:
        stop(supervisor)
    assert sent == 15_000
    assert stored(ingest_db, spec) == (sent, sent, sent)
    written = 'fleetcare_ingest_messages_written_total{channel="telemetry"}'
    assert all(v[written] > 0 for v in values), "both workers should have written"
    assert all(v["fleetcare_ingest_messages_other_partition_total"] > 0 for v in values)
    assert all(v['fleetcare_ingest_mqtt_connects_total{protocol="5"}'] >= 2 for v in values)


def test_two_shared_workers_broker_restarted_sdk_devices_hold_what_nobody_took(
    ingest_db: str,
    mosquitto: MosquittoBroker,
    root: str,
    fleet: FleetFactory,
    log_path: Path,
    tmp_path: Path,
) -> None:
    """Two workers on a shared subscription, the broker restarted while SDK devices publish.

    Mosquitto 2.0.11 brings the workers' sessions back without their shared subscriptions;
    devices reconnect first, and what they publish before a worker subscribes again is
    acknowledged with reason 0x10 (no matching subscribers). The SDK holds those batches and
    sends them again, so nothing is lost."""
    spec = fleet(devices=4, metrics=("a", "b"))
    port = free_tcp_port_run(2)
    env = {
        **ingest_env(ingest_db, mosquitto, root, port),
        "FLEETCARE_INGEST_SUBSCRIPTION": "shared",
    }
    supervisor = ingest_process(env, "--workers", "2", log_path=log_path)
    stop_devices = threading.Event()
    recorded = [0] * spec.devices

    def device(index: int, client: DeviceClient) -> None:
        while not stop_devices.is_set():
            client.record({"a": float(recorded[index]), "b": 1.5})
            recorded[index] += 1
            time.sleep(0.004)

    clients = [
        DeviceClient(
            DeviceConfig(
                device_id=spec.device_id(i),
                broker_urls=(mosquitto.url,),
                queue_path=tmp_path / f"queue-{i}",
                topic_root=root,
                protocol="5",
                reconnect_min_s=0.1,
                reconnect_max_s=0.5,
                batch_linger_s=0.02,
                state_interval_s=0,
            )
        )
        for i in range(spec.devices)
    ]
    threads = [threading.Thread(target=device, args=(i, c)) for i, c in enumerate(clients)]
    try:
        assert wait_metrics(port)
        assert wait_metrics(port + 1)
        for client in clients:
            client.start()
            client.wait_connected(10)
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        mosquitto.restart()
        time.sleep(3.0)
        stop_devices.set()
        for thread in threads:
            thread.join(10)
        total = sum(recorded)
        assert wait_until(lambda: stored(ingest_db, spec).readings >= total, 40)
        unrouted = sum(c.health().unrouted for c in clients)
        values = [scrape(p) for p in (port, port + 1)]
    finally:
        stop_devices.set()
        try:
            for client in clients:
                client.stop()
        finally:
            stop(supervisor)
    assert stored(ingest_db, spec) == (total, total, total)
    written = 'fleetcare_ingest_messages_written_total{channel="telemetry"}'
    assert all(v[written] > 0 for v in values), "both workers should have written"
    print(f"shared, broker restarted: {total} readings, {unrouted} batches held on PUBACK 0x10")
