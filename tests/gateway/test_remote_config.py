"""Remote configuration through the gateway's twin: validated, applied, or refused and kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from device_sdk.wire import Channel, build_topic
from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig
from gateway.service import BackgroundGateway
from tests.gateway.conftest import Collector, ModbusServer

pytestmark = [pytest.mark.services]


def _desired(version: int, config: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": 1, "version": version, "config": config})


def _reports(collector: Collector) -> list[dict[str, Any]]:
    return [m for m in collector.messages(Channel.CONFIG_REPORTED) if m["device"] == "gw-test"]


def test_pushed_register_maps_are_validated_applied_or_refused_and_persisted(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    _local, central = brokers
    collector = collector_factory(central, topic_root)
    server = ModbusServer({0: 215, 1: 7}, {}).start()
    topic = build_topic("gw-test", Channel.CONFIG_DESIRED, topic_root)
    good = {"modbus": [{"device_id": "boiler-1", "host": "127.0.0.1", "port": server.port,
                        "poll_interval_s": 0.05,
                        "registers": [{"metric": "temp_c", "address": 0, "scale": 0.1,
                                       "unit": "degC"}]}]}  # fmt: skip
    bad = {"modbus": [{"device_id": "boiler-1", "host": "127.0.0.1", "port": server.port,
                       "registers": [{"metric": "temp_c", "address": 0, "data_type": "int64"},
                                     {"metric": "flow", "address": 0}]}]}  # fmt: skip
    config = gateway_config(central.url)
    try:
        with BackgroundGateway(config) as running:
            gateway = running.gateway
            assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
            collector.publish(topic, _desired(1, good), retain=True)
            collector.wait_for(lambda: len(_reports(collector)) >= 1)
            collector.wait_for(lambda: len(collector.seqs("boiler-1")) >= 3)
            collector.publish(topic, _desired(2, bad), retain=True)
            collector.wait_for(lambda: len(_reports(collector)) >= 2)
            before = len(collector.seqs("boiler-1"))
            collector.wait_for(lambda: len(collector.seqs("boiler-1")) >= before + 3)  # still on
            collector.publish(topic, b"{not json", retain=False)
            time.sleep(0.2)
            assert gateway.twin is not None and gateway.twin.applied_version == 1
        # A restart runs the last applied site (version 1), not the file's empty one.
        with BackgroundGateway(config) as running:
            assert running.gateway.runner is not None
            assert list(running.gateway.runner.pollers) == ["boiler-1"]
            collector.publish(topic, b"", retain=True)  # clear the retained desired
    finally:
        server.stop()
    applied, rejected = _reports(collector)[:2]
    assert applied["version"] == 1 and applied["status"] == "applied"
    assert applied["config"]["modbus"][0]["registers"][0]["unit"] == "degC"
    assert rejected["version"] == 2 and rejected["status"] == "rejected"
    assert "still running version 1" in rejected["error"]
    assert "config.modbus[0].registers[0].data_type" in rejected["error"]
    entries = [e for (d, _s), e in collector.entries.items() if d == "boiler-1" and "m" in e]
    assert entries[0]["m"] == {"temp_c": pytest.approx(21.5)}
