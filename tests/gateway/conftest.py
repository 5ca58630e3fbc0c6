"""Helpers for gateway tests: configurations, a tiny ONNX sequence model, a Modbus server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fleetcare.embedded.mosquitto import MosquittoBroker
from fleetcare.embedded.ports import free_tcp_port
from gateway.config import GatewayConfig, validate_model
from models.datasets.hashing import file_sha256
from models.manifest import Manifest, TensorSpec, WindowSpec
from tests.device_sdk.conftest import Collector, broker_config
from tests.fixtures.fix_mqtt import MosquittoFactory

__all__ = ["Collector", "ModbusServer", "broker_config", "write_tiny_model"]

FEATURES = ("temp_c", "vib_mm_s")
WINDOW = 8


@pytest.fixture
def brokers(mosquitto_factory: MosquittoFactory) -> tuple[MosquittoBroker, MosquittoBroker]:
    """(local, central): two private brokers with persistence and large queue limits."""
    return mosquitto_factory(broker_config()), mosquitto_factory(broker_config())


@pytest.fixture
def collector_factory() -> Iterator[Callable[[MosquittoBroker, str], Collector]]:
    started: list[Collector] = []

    def start(broker: MosquittoBroker, root: str) -> Collector:
        collector = Collector(broker.port, root).start()
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.stop()


@pytest.fixture
def gateway_config(tmp_path: Path, topic_root: str) -> Callable[..., GatewayConfig]:
    """``gateway_config(uplink_url, local_url=None, **overrides)``: a fast-reacting config."""

    def build(uplink_url: str, local_url: str | None = None, **overrides: Any) -> GatewayConfig:
        uplink = {
            "url": uplink_url,
            "topic_root": topic_root,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "keepalive_s": 5,
            "state_interval_s": 0.5,
            **overrides.pop("uplink", {}),
        }
        values: dict[str, Any] = {
            "gateway_id": "gw-test",
            "data_dir": str(tmp_path / "gateway-data"),
            "uplink": uplink,
            "queue": {"max_bytes": 16 * 1024 * 1024},
        }
        if local_url is not None:
            values["local"] = {"url": local_url, "topic_root": topic_root}
        values.update(overrides)
        return validate_model(GatewayConfig, values, "test configuration")

    return build


def write_tiny_model(directory: Path) -> Path:
    """A ``rul_sequence`` ONNX model and manifest (no torch): risk rises with temperature.

    ``score = mean over the window of (0.05 * temp_c + 0.5 * vib_mm_s) - 4``;
    ``risk = sigmoid(score)``, ``rul = relu(100 - 10 * score)``, one failure mode.
    """
    directory.mkdir(parents=True, exist_ok=True)
    channels = 2 * len(FEATURES)
    weights = np.zeros((channels, 1), dtype=np.float32)
    weights[0, 0], weights[1, 0] = 0.05, 0.5
    nodes = [
        helper.make_node("MatMul", ["windows", "w"], ["projected"]),
        helper.make_node("ReduceMean", ["projected"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Sub", ["mean", "bias"], ["score"]),
        helper.make_node("Sigmoid", ["score"], ["risk"]),
        helper.make_node("Mul", ["score", "ten"], ["scaled"]),
        helper.make_node("Sub", ["hundred", "scaled"], ["raw_rul"]),
        helper.make_node("Relu", ["raw_rul"], ["rul"]),
        helper.make_node("Unsqueeze", ["score", "axis"], ["score_2d"]),
        helper.make_node("Softmax", ["score_2d"], ["mode_probabilities"], axis=1),
    ]
    initialisers = [
        helper.make_tensor("w", TensorProto.FLOAT, [channels, 1], weights.ravel().tolist()),
        helper.make_tensor("bias", TensorProto.FLOAT, [], [4.0]),
        helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
        helper.make_tensor("hundred", TensorProto.FLOAT, [], [100.0]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_rul",
        [helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["batch", WINDOW, channels])],
        [
            helper.make_tensor_value_info("rul", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("mode_probabilities", TensorProto.FLOAT, ["batch", 1]),
        ],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    manifest = Manifest(
        name="tiny-edge",
        version="v1",
        kind="rul_sequence",
        feature_names=FEATURES,
        window=WindowSpec(length=WINDOW),
        inputs=(TensorSpec(name="windows", shape=("batch", WINDOW, channels)),),
        outputs=(
            TensorSpec(name="rul", shape=("batch",)),
            TensorSpec(name="risk", shape=("batch",)),
            TensorSpec(name="mode_probabilities", shape=("batch", 1)),
        ),
        failure_modes=("overheating",),
        training_data="synthetic",
        training_data_sha256="0" * 64,
        opset=17,
        artifact_sha256=file_sha256(directory / "model.onnx"),
    )
    manifest.write(directory)
    return directory


class ModbusServer:
    """A pymodbus TCP server on its own event loop thread, with settable registers."""

    def __init__(self, holding: dict[int, int], inputs: dict[int, int], size: int = 64) -> None:
        self.port = free_tcp_port()
        self.holding = [holding.get(i, 0) for i in range(size)]
        self.inputs = [inputs.get(i, 0) for i in range(size)]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: Any = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        device = SimDevice(
            id=1,
            simdata=(
                [SimData(0, count=8, values=False, datatype=DataType.BITS)],
                [SimData(0, count=8, values=False, datatype=DataType.BITS)],
                [SimData(0, values=self.holding, datatype=DataType.REGISTERS)],
                [SimData(0, values=self.inputs, datatype=DataType.REGISTERS)],
            ),
        )
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self._server.serve_forever(background=True)

    def start(self) -> ModbusServer:
        self._thread.start()
        assert self._ready.wait(10), "modbus server did not start"
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
