"""Acceptance: outages and crashes between local devices, the gateway and the central broker.

Every test counts what arrived at the central broker after deduplication on (device, seq):

* the uplink cut (a TCP proxy drops and refuses the connection) while 20 SDK devices keep
  sending to the local broker: after recovery every reading arrives, exactly once;
* the central or the local broker restarted: the gateway reconnects by itself and delivers
  everything;
* the gateway process killed with SIGKILL mid-stream and started again: nothing the devices
  recorded (and so nothing the gateway acknowledged) is lost;
* the gateway's queue bound reached during an outage: oldest dropped first, reported;
* a batch the queue could not store: not acknowledged, delivered again, nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from device_sdk import DeviceClient, DeviceConfig
from device_sdk.wire import Channel
from firmware_sim.netproxy import FaultProxy
from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig
from gateway.service import BackgroundGateway
from tests.gateway.conftest import Collector

pytestmark = [pytest.mark.services, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEVICES = 20


def _device_config(local: MosquittoBroker, root: str, tmp: Path, index: int) -> DeviceConfig:
    return DeviceConfig(
        device_id=f"dev-{index:02d}",
        broker_urls=[local.url],
        queue_path=tmp / f"device-{index:02d}",
        topic_root=root,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        batch_linger_s=0.02,
        state_interval_s=0,
    )


class Fleet:
    """20 SDK devices recording to the local broker from one thread, ~2,000 readings/s."""

    def __init__(self, local: MosquittoBroker, root: str, tmp: Path) -> None:
        self.configs = [_device_config(local, root, tmp, i) for i in range(DEVICES)]
        self.clients = [DeviceClient(config) for config in self.configs]
        self.accepted: dict[str, list[int]] = {c.device_id: [] for c in self.configs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, daemon=True)

    def _produce(self) -> None:
        counter = 0
        while not self._stop.is_set():
            for config, client in zip(self.configs, self.clients, strict=True):
                seq = client.record({"counter": float(counter), "temp_c": 20.0 + counter % 7})
                self.accepted[config.device_id].append(seq)
            counter += 1
            time.sleep(0.01)

    def start(self) -> Fleet:
        for client in self.clients:
            client.start()
        for client in self.clients:
            client.wait_connected(10)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self.clients:
            client.flush(30)
            client.stop()

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.accepted.values())


def _all_arrived(collector: Collector, fleet: Fleet) -> Callable[[], bool]:
    return lambda: all(
        collector.seqs(device) >= set(seqs) for device, seqs in fleet.accepted.items()
    )


def _assert_exactly_once(collector: Collector, fleet: Fleet) -> None:
    for device, seqs in fleet.accepted.items():
        arrived = collector.seqs(device)
        missing = set(seqs) - arrived
        assert not missing, f"{device}: {len(missing)} readings lost, e.g. {sorted(missing)[:5]}"
        assert arrived == set(seqs), f"{device}: unexpected seqs {sorted(arrived - set(seqs))[:5]}"
    assert collector.errors == []


def test_uplink_cut_while_20_devices_send_loses_nothing(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    collector = collector_factory(central, topic_root)
    proxy = FaultProxy("127.0.0.1", central.port)
    proxy.add_path("uplink")
    proxy.start()
    try:
        config = gateway_config(proxy.url("uplink"), local.url)
        with BackgroundGateway(config) as running:
            gateway = running.gateway
            assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
            fleet = Fleet(local, topic_root, tmp_path).start()
            time.sleep(0.5)
            proxy.cut("uplink")
            before_cut = fleet.total
            time.sleep(2.0)
            assert gateway.forwarder is not None
            during = gateway.forwarder.health()
            proxy.restore("uplink")
            time.sleep(0.5)
            fleet.stop()
            collector.wait_for(_all_arrived(collector, fleet), timeout=30)
            assert gateway.forwarder is not None
            after = gateway.forwarder.health()
            metrics = gateway.metrics.snapshot()
    finally:
        proxy.stop()
    assert fleet.total > before_cut + 1_000  # the devices kept sending during the outage
    assert not during.connected and during.queued > 0
    assert during.oldest_unsent_age_s is not None and during.oldest_unsent_age_s >= 1.0
    _assert_exactly_once(collector, fleet)
    assert metrics["reconnects"] >= 1 and metrics["rejected_batches"] == 0
    assert after.dropped == 0
    states = [s for s in collector.messages(Channel.STATE) if s["device"] == "gw-test"]
    assert any(s["online"] and "queue_fill" in s["health"] for s in states)
    print(f"readings={fleet.total} duplicates_before_dedup={collector.duplicates()}")


@pytest.mark.parametrize("which", ["central", "local"])
def test_broker_restart_the_gateway_reconnects_by_itself(
    which: str,
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    collector = collector_factory(central, topic_root)
    with BackgroundGateway(gateway_config(central.url, local.url)) as running:
        gateway = running.gateway
        assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
        fleet = Fleet(local, topic_root, tmp_path).start()
        time.sleep(0.5)
        restarted = central if which == "central" else local
        session = gateway.uplink if which == "central" else gateway.intake
        assert session is not None
        restarted.stop()
        time.sleep(1.0)
        assert not session.connected.is_set()
        restarted.start()
        assert session.connected.wait(10), "the gateway did not reconnect"
        time.sleep(0.3)
        fleet.stop()
        collector.wait_for(_all_arrived(collector, fleet), timeout=30)
        metrics = gateway.metrics.snapshot()
    _assert_exactly_once(collector, fleet)
    assert metrics["reconnects"] >= (1 if which == "central" else 0)


def _write_config(path: Path, central: MosquittoBroker, local: MosquittoBroker, root: str) -> Path:
    config = {
        "gateway_id": "gw-kill",
        "data_dir": str(path.parent / "gateway-kill-data"),
        "log_level": "WARNING",
        "uplink": {"url": central.url, "topic_root": root, "reconnect_min_s": 0.1,
                   "reconnect_max_s": 0.5, "state_interval_s": 0},
        "local": {"url": local.url, "topic_root": root},
        "queue": {"max_bytes": 16 * 1024 * 1024},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def _spawn_gateway(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )


def test_gateway_sigkill_loses_nothing_it_acknowledged(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    collector = collector_factory(central, topic_root)
    config = _write_config(tmp_path / "gateway.yaml", central, local, topic_root)
    first = _spawn_gateway(config)
    try:
        collector.wait_for(
            lambda: any(s["device"] == "gw-kill" for s in collector.messages(Channel.STATE)), 20
        )
        fleet = Fleet(local, topic_root, tmp_path).start()
        collector.wait_for(lambda: len(collector.arrivals) > 2_000, timeout=20)
        first.send_signal(signal.SIGKILL)  # mid-stream: batches queued, in flight, unacked
        first.wait(10)
        killed_at = fleet.total
        time.sleep(1.0)  # the devices keep sending to the local broker meanwhile
        second = _spawn_gateway(config)
        try:
            time.sleep(0.5)
            fleet.stop()
            collector.wait_for(_all_arrived(collector, fleet), timeout=40)
        finally:
            second.send_signal(signal.SIGTERM)
            _out, err = second.communicate(timeout=15)
        assert second.returncode == 0, err.decode()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=10)
    assert fleet.total > killed_at > 2_000
    _assert_exactly_once(collector, fleet)
    print(f"readings={fleet.total} duplicates_before_dedup={collector.duplicates()}")


def test_queue_bound_during_an_outage_drops_oldest_and_reports_it(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    collector = collector_factory(central, topic_root)
    proxy = FaultProxy("127.0.0.1", central.port)
    proxy.add_path("uplink")
    proxy.start()
    proxy.cut("uplink")
    config = gateway_config(
        proxy.url("uplink"), local.url,
        queue={"max_bytes": 1024 * 1024, "segment_bytes": 64 * 1024},
    )  # fmt: skip
    try:
        with (
            BackgroundGateway(config) as running,
            DeviceClient(_device_config(local, topic_root, tmp_path, 0)) as client,
        ):
            client.wait_connected(10)
            accepted: list[int] = []
            for _round in range(2):  # ~3.5 MB through a 1 MiB gateway queue
                readings = [(None, {"counter": float(i)}) for i in range(10_000)]
                accepted.extend(client.record_many(readings))
            client.flush(20)
            gateway = running.gateway
            assert gateway.forwarder is not None
            deadline = time.monotonic() + 10
            while gateway.metrics.snapshot()["received_entries"] < len(accepted):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            during = gateway.forwarder.health()
            proxy.restore("uplink")
            collector.wait_for(lambda: max(accepted) in collector.seqs("dev-00"), timeout=20)
            collector.wait_for(lambda: collector.events("gw-test", "gateway.dropped"), timeout=5)
    finally:
        proxy.stop()
    assert during.dropped > 0 and during.queue_fill <= 1.0
    arrived = collector.seqs("dev-00")
    lost = sorted(set(accepted) - arrived)
    kept = sorted(set(accepted) & arrived)
    assert lost and kept and max(lost) < min(kept)  # oldest first
    assert kept == sorted(accepted)[-len(kept) :]  # everything newer than the drops arrived
    reports = collector.events("gw-test", "gateway.dropped")
    assert sum(r["attrs"]["count"] for r in reports) == during.dropped == len(lost)


def test_a_batch_the_queue_could_not_store_is_not_acknowledged_and_comes_again(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    from device_sdk import QueueError

    local, central = brokers
    collector = collector_factory(central, topic_root)
    with BackgroundGateway(gateway_config(central.url, local.url)) as running:
        store = running.gateway.store
        assert store is not None
        real_append = store.append
        failures = []

        def failing_once(kind: object, items: list[bytes]) -> range:
            if not failures:
                failures.append(len(items))
                raise QueueError("disk full (injected)")
            return real_append(kind, items)  # type: ignore[arg-type]

        store.append = failing_once  # type: ignore[method-assign]
        with DeviceClient(_device_config(local, topic_root, tmp_path, 1)) as client:
            client.wait_connected(10)
            accepted = list(client.record_many([(None, {"x": float(i)}) for i in range(300)]))
            client.flush(10)
        collector.wait_for(lambda: collector.seqs("dev-01") >= set(accepted), timeout=15)
    assert failures and collector.seqs("dev-01") == set(accepted)
