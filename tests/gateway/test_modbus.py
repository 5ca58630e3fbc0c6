"""A Modbus TCP server (pymodbus, started here) is polled; values arrive scaled, with units."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from device_sdk.wire import Channel
from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig
from gateway.errors import RegisterMapError
from gateway.registers import DataType, WordOrder, encode_value
from gateway.service import BackgroundGateway
from tests.gateway.conftest import Collector, ModbusServer

REGISTER_MAP: list[dict[str, Any]] = [
    {"metric": "supply_temp_c", "address": 0, "data_type": "int16", "scale": 0.1, "unit": "degC"},
    {"metric": "flow_l_min", "address": 1, "data_type": "uint16", "scale": 0.01, "offset": -5.0,
     "unit": "l/min"},
    {"metric": "energy_kwh", "address": 2, "data_type": "uint32", "word_order": "little",
     "scale": 0.001, "unit": "kWh"},
    {"metric": "pressure_bar", "address": 4, "data_type": "float32", "unit": "bar"},
    {"metric": "rpm", "address": 0, "type": "input", "data_type": "int32", "unit": "1/min",
     "poll_interval_s": 0.1},
]  # fmt: skip


def _registers() -> tuple[dict[int, int], dict[int, int]]:
    holding: dict[int, int] = {}
    for address, words in (
        (0, encode_value(-123, DataType.INT16, WordOrder.BIG)),  # -12.3 degC
        (1, encode_value(2550, DataType.UINT16, WordOrder.BIG)),  # 25.5 - 5 = 20.5 l/min
        (2, encode_value(123_456_789, DataType.UINT32, WordOrder.LITTLE)),  # 123456.789 kWh
        (4, encode_value(2.5, DataType.FLOAT32, WordOrder.BIG)),
    ):
        for offset, word in enumerate(words):
            holding[address + offset] = word
    rpm = encode_value(-70_000, DataType.INT32, WordOrder.BIG)
    return holding, {0: rpm[0], 1: rpm[1]}


def _readings(collector: Collector, device: str) -> list[dict[str, float | None]]:
    with collector.lock:
        return [e["m"] for (d, _s), e in collector.entries.items() if d == device and "m" in e]


@pytest.mark.services
def test_polled_values_arrive_scaled_with_units_and_gateway_sequences(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
) -> None:
    _local, central = brokers
    collector = collector_factory(central, topic_root)
    holding, inputs = _registers()
    server = ModbusServer(holding, inputs).start()
    site = {
        "modbus": [
            {"device_id": "chiller-1", "host": "127.0.0.1", "port": server.port,
             "poll_interval_s": 0.2, "registers": REGISTER_MAP},
        ]
    }  # fmt: skip
    config = gateway_config(central.url, site=site)
    try:
        with BackgroundGateway(config) as running:
            collector.wait_for(lambda: len(_readings(collector, "chiller-1")) >= 8, timeout=15)
            # a poll counts itself once its reading is queued, which the forwarder may
            # already have sent: the counter can trail the collector by a poll
            collector.wait_for(
                lambda: running.gateway.metrics.snapshot()["polled_readings"] >= 8, timeout=5
            )
            metrics = running.gateway.metrics.snapshot()
    finally:
        server.stop()
    entries = [e for (d, _s), e in collector.entries.items() if d == "chiller-1"]
    readings = [e["m"] for e in entries if "m" in e]
    slow = [m for m in readings if "supply_temp_c" in m]
    fast = [m for m in readings if "rpm" in m]
    assert slow and fast and len(fast) > len(slow)  # the input register polls every 0.1 s
    assert slow[0] == pytest.approx(
        {"supply_temp_c": -12.3, "flow_l_min": 20.5, "energy_kwh": 123456.789,
         "pressure_bar": 2.5}, abs=1e-9,
    )  # fmt: skip
    assert fast[0] == {"rpm": -70000.0}
    units = [e for e in entries if e.get("type") == "gateway.units"]
    assert units and units[0]["attrs"] == {
        "supply_temp_c": "degC", "flow_l_min": "l/min", "energy_kwh": "kWh",
        "pressure_bar": "bar", "rpm": "1/min",
    }  # fmt: skip
    seqs = sorted(collector.seqs("chiller-1"))
    assert seqs == sorted(set(seqs)) and collector.duplicates() == 0
    assert metrics["modbus_errors"] == 0 and metrics["polled_readings"] >= 8
    state = collector.messages(Channel.STATE)
    online = [s for s in state if s["device"] == "gw-test" and s["online"]]
    assert online and online[-1]["health"]["connected"] is True
    assert state[-1]["online"] is False  # published on a clean stop


@pytest.mark.services
def test_gateway_sequences_survive_a_restart(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: Callable[[MosquittoBroker, str], Collector],
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
) -> None:
    _local, central = brokers
    collector = collector_factory(central, topic_root)
    holding, inputs = _registers()
    server = ModbusServer(holding, inputs).start()
    site = {"modbus": [{"device_id": "chiller-2", "host": "127.0.0.1", "port": server.port,
                        "poll_interval_s": 0.05, "registers": REGISTER_MAP[:1]}]}  # fmt: skip
    config = gateway_config(central.url, site=site)
    try:
        with BackgroundGateway(config):
            collector.wait_for(lambda: len(collector.seqs("chiller-2")) >= 5, timeout=15)
        first = collector.seqs("chiller-2")
        with BackgroundGateway(config):
            collector.wait_for(lambda: len(collector.seqs("chiller-2") - first) >= 5, timeout=15)
    finally:
        server.stop()
    after = collector.seqs("chiller-2") - first
    assert min(after) > max(first)  # numbering continues, nothing reused


@pytest.mark.parametrize(
    ("registers", "expected"),
    [
        (
            [{"metric": "a", "address": 0, "data_type": "uint32"},
             {"metric": "b", "address": 1}],
            "site.modbus[0]: registers[1] (b, holding 1..1) overlaps registers[0] (a, 0..1)",
        ),
        (
            [{"metric": "a", "address": 0, "data_type": "int24"}],
            "site.modbus[0].registers[0].data_type: Input should be 'int16', 'uint16', "
            "'int32', 'uint32' or 'float32'",
        ),
        (
            [{"metric": "a", "address": 65535, "data_type": "float32"}],
            "site.modbus[0]: registers[0] (float32 at 65535) runs past register 65535",
        ),
        (
            [{"metric": "a", "address": 0}, {"metric": "a", "address": 1}],
            "registers[1].metric 'a' is already used by registers[0]",
        ),
        ([{"metric": "a", "address": 0, "scale": 0}], "registers[0].scale: scale must not be 0"),
        ([{"metric": "bad name", "address": 0}], "site.modbus[0].registers[0].metric"),
    ],
)  # fmt: skip
def test_a_register_map_with_an_error_is_refused_with_a_clear_message(
    gateway_config: Callable[..., GatewayConfig], registers: list[dict[str, Any]], expected: str
) -> None:
    site = {"modbus": [{"device_id": "m-1", "host": "127.0.0.1", "registers": registers}]}
    with pytest.raises(RegisterMapError) as caught:
        gateway_config("mqtt://127.0.0.1:1", site=site)
    assert expected in str(caught.value)


@pytest.mark.services
def test_an_unreachable_modbus_device_is_counted_not_fatal(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    gateway_config: Callable[..., GatewayConfig],
    tmp_path: Path,
) -> None:
    from fleetcare.embedded.ports import free_tcp_port

    _local, central = brokers
    site = {"modbus": [{"device_id": "gone-1", "host": "127.0.0.1", "port": free_tcp_port(),
                        "poll_interval_s": 0.05, "timeout_s": 0.2,
                        "registers": REGISTER_MAP[:1]}]}  # fmt: skip
    with BackgroundGateway(gateway_config(central.url, site=site)) as running:
        deadline = time.monotonic() + 5
        while running.gateway.metrics.snapshot()["modbus_errors"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert running.gateway.metrics.snapshot()["polled_readings"] == 0
