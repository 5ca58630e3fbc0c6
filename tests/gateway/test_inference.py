"""Edge inference: same score as the backend path for the same window; alerts while offline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk import DeviceClient, DeviceConfig
from firmware_sim.netproxy import FaultProxy
from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig, InferenceConfig, QueueConfig
from gateway.errors import GatewayConfigError
from gateway.inference import EdgeInference
from gateway.metrics import GatewayMetrics
from gateway.service import BackgroundGateway
from gateway.store import Store
from models.serving import DeviceHistory, SequenceScorer
from tests.gateway.conftest import FEATURES, WINDOW, Collector, write_tiny_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "model")


def test_edge_score_equals_backend_scoring_for_the_same_window(
    model_dir: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    store = Store(tmp_path / "data", QueueConfig(), "gw-test")
    engine = EdgeInference(InferenceConfig(model_dir=model_dir), store, GatewayMetrics())
    engine.start()
    try:
        readings: list[tuple[int, dict[str, float | None]]] = []
        for i in range(WINDOW + 5):
            temp = float(rng.normal(60, 5))
            vib: float | None = None if i == 3 else float(rng.normal(2, 0.5))  # one gap
            readings.append((1_795_000_000_000 + i * 1000, {"temp_c": temp, "vib_mm_s": vib}))
        engine.submit("pump-1", readings)
        engine.submit("pump-2", readings[:3])  # a short history: padded, as at the backend
        assert engine.wait_idle(10)
        edge = engine.latest
    finally:
        engine.stop()
        store.close()

    backend = SequenceScorer(model_dir)  # the backend's serving path, on the same windows
    nan = float("nan")

    def history(rows: list[tuple[int, dict[str, float | None]]]) -> DeviceHistory:
        values = [[nan if m.get(f) is None else m[f] for f in FEATURES] for _t, m in rows]
        return DeviceHistory(values=np.array(values, dtype=np.float64))

    expected = backend.score([history(readings), history(readings[:3])])
    assert edge["pump-1"] == expected[0]
    assert edge["pump-2"] == expected[1]
    assert 0 < expected[0].risk < 1 and expected[0].risk != expected[1].risk


def test_a_missing_model_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"inference\.model_dir"):
        EdgeInference(
            InferenceConfig(model_dir=tmp_path / "nowhere"),
            Store(tmp_path / "data", QueueConfig(), "gw"),
            GatewayMetrics(),
        )


@pytest.mark.services
def test_alert_raised_locally_while_the_uplink_is_down_and_sent_first_after(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    model_dir: Path,
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    collector = collector_factory(central, topic_root)
    proxy = FaultProxy("127.0.0.1", central.port)
    proxy.add_path("uplink")
    proxy.start()
    proxy.cut("uplink")  # the uplink is down from the start
    alerts: list[dict[str, object]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="alert-listener")
    listener.on_message = lambda _c, _u, msg: alerts.append(orjson.loads(msg.payload))
    listener.connect("127.0.0.1", local.port)
    listener.loop_start()
    config = gateway_config(
        proxy.url("uplink"), local.url,
        inference={"model_dir": str(model_dir), "threshold": 0.9},
    )  # fmt: skip
    listener.subscribe(config.alert_topic, qos=1)
    device = DeviceConfig(
        device_id="hot-1", broker_urls=[local.url], queue_path=tmp_path / "dev",
        topic_root=topic_root, batch_linger_s=0.01, state_interval_s=0,
    )  # fmt: skip
    try:
        with BackgroundGateway(config) as running, DeviceClient(device) as client:
            client.wait_connected(10)
            for i in range(WINDOW):  # risk = sigmoid(0.05 * 160 / 2 + 0.5 * 2 / 2 - 4) ~ 0.62
                client.record({"temp_c": 60.0, "vib_mm_s": 2.0 + 0.001 * i})
            for _i in range(WINDOW):  # then overheating: risk ~ 0.99
                client.record({"temp_c": 200.0, "vib_mm_s": 8.0})
            client.flush(10)
            deadline = time.monotonic() + 10
            while not alerts and time.monotonic() < deadline:
                time.sleep(0.02)
            gateway = running.gateway
            assert gateway.inference is not None and gateway.inference.wait_idle(10)
            assert gateway.uplink is not None and not gateway.uplink.connected.is_set()
            proxy.restore("uplink")
            collector.wait_for(lambda: len(collector.seqs("hot-1")) == 2 * WINDOW, timeout=15)
            collector.wait_for(lambda: collector.events("gw-test", "edge.risk_alert"), timeout=5)
            metrics = gateway.metrics.snapshot()
    finally:
        proxy.stop()
        listener.disconnect()
        listener.loop_stop()
    assert len(alerts) == 1 and alerts[0]["device"] == "hot-1"  # once, not on every reading
    risk = alerts[0]["risk"]
    assert isinstance(risk, float) and risk >= 0.9
    (event,) = collector.events("gw-test", "edge.risk_alert")
    assert event["severity"] == "critical" and event["attrs"]["device"] == "hot-1"
    assert event["attrs"]["risk"] == risk and event["attrs"]["model"] == "tiny-edge"
    assert metrics["alerts"] == 1 and metrics["inference_runs"] == 2 * WINDOW
    # High priority: the alert left the gateway before the device's backlog.
    order = [b["n"] for b in collector.batches if b["kind"] == "events"]
    assert order and collector.batches[0]["kind"] == "events"
