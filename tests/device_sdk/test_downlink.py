"""Down-link against a real Mosquitto: commands with replies, and the device twin."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from device_sdk import AsyncDeviceClient, Command, DesiredConfig, DeviceClient, DeviceConfig
from device_sdk.wire import Channel, build_topic
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.device_sdk.conftest import Collector

pytestmark = pytest.mark.services

CollectorFactory = Callable[[MosquittoBroker, str], Collector]


def send_command(collector: Collector, root: str, device: str, doc: Mapping[str, Any]) -> None:
    collector.publish(build_topic(device, Channel.COMMANDS, root), orjson.dumps(doc))


def replies_by_id(collector: Collector) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in collector.messages(Channel.COMMAND_REPLY)}


def test_commands_are_answered(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    client = DeviceClient(make_config(broker.url, command_queue_size=4))

    @client.command("set_rate")
    def set_rate(command: Command) -> dict[str, Any]:
        return {"rate_hz": command.args["hz"] * 2}

    @client.command("explode")
    def explode(_command: Command) -> None:
        raise RuntimeError("boom")

    with client:
        client.wait_connected(5)
        send_command(
            collector,
            topic_root,
            "dev-1",
            {"v": 1, "id": "c1", "name": "set_rate", "args": {"hz": 2}},
        )
        send_command(collector, topic_root, "dev-1", {"v": 1, "id": "c2", "name": "nope"})
        send_command(collector, topic_root, "dev-1", {"v": 1, "id": "c3", "name": "explode"})
        send_command(collector, topic_root, "dev-1", {"v": 1, "id": "c4", "name": "bad name!"})
        collector.wait_for(lambda: len(replies_by_id(collector)) == 4)
    replies = replies_by_id(collector)
    assert replies["c1"]["status"] == "ok" and replies["c1"]["result"] == {"rate_hz": 4}
    assert replies["c2"]["status"] == "unknown"
    assert replies["c3"]["status"] == "error" and "RuntimeError: boom" in replies["c3"]["error"]
    assert replies["c4"]["status"] == "invalid"
    assert all(r["device"] == "dev-1" for r in replies.values())


def test_full_command_queue_answers_busy(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    release = threading.Event()
    client = DeviceClient(make_config(broker.url, command_queue_size=1))
    client.add_command_handler("slow", lambda _command: {"done": release.wait(5)})
    with client:
        client.wait_connected(5)
        for n in range(4):
            send_command(collector, topic_root, "dev-1", {"v": 1, "id": f"s{n}", "name": "slow"})
        # One command runs (blocked), one waits in the queue of 1, two are answered busy.
        collector.wait_for(
            lambda: sum(r["status"] == "busy" for r in replies_by_id(collector).values()) == 2
        )
        release.set()
        collector.wait_for(lambda: len(replies_by_id(collector)) == 4)
    statuses = sorted(r["status"] for r in replies_by_id(collector).values())
    assert statuses.count("ok") == 2 and statuses.count("busy") == 2


def test_a_repeated_command_runs_once_and_gets_the_same_answer(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    """QoS 1 redelivery, or a backend sending again after a crash: the handler runs once."""
    collector = collector_factory(broker, topic_root)
    release = threading.Event()
    ran: list[str] = []
    client = DeviceClient(make_config(broker.url, command_queue_size=4))

    @client.command("dispense")
    def dispense(command: Command) -> dict[str, Any]:
        ran.append(command.id)
        release.wait(5)
        return {"litres": command.args["litres"]}

    doc = {"v": 1, "id": "d1", "name": "dispense", "args": {"litres": 5}}
    with client:
        client.wait_connected(5)
        send_command(collector, topic_root, "dev-1", doc)  # runs (held by the handler)
        collector.wait_for(lambda: bool(ran))
        send_command(collector, topic_root, "dev-1", doc)  # while it runs: not run again
        time.sleep(0.5)
        release.set()
        collector.wait_for(lambda: len(collector.messages(Channel.COMMAND_REPLY)) == 1)
        send_command(collector, topic_root, "dev-1", doc)  # after it ran: the same answer
        collector.wait_for(lambda: len(collector.messages(Channel.COMMAND_REPLY)) == 2)
    first, again = collector.messages(Channel.COMMAND_REPLY)
    assert ran == ["d1"]
    assert first == again
    assert first["status"] == "ok" and first["result"] == {"litres": 5}


def test_device_twin_round_trip(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)
    desired_topic = build_topic("dev-1", Channel.CONFIG_DESIRED, topic_root)
    # The backend sets desired config before the device is even online (retained).
    collector.publish(
        desired_topic,
        orjson.dumps({"v": 1, "version": 1, "config": {"sample_hz": 50, "mode": "eco"}}),
        retain=True,
    )
    applied: list[int] = []
    client = DeviceClient(make_config(broker.url))

    @client.on_config
    def apply(desired: DesiredConfig) -> dict[str, Any]:
        if desired.config.get("mode") == "turbo":
            raise ValueError("turbo is not supported on this model")
        applied.append(desired.version)
        return {**desired.config, "sample_hz": min(float(desired.config["sample_hz"]), 10.0)}

    def reported(version: int) -> dict[str, Any] | None:
        found = [r for r in collector.messages(Channel.CONFIG_REPORTED) if r["version"] == version]
        return found[-1] if found else None

    with client:
        collector.wait_for(lambda: reported(1) is not None)
        assert client.desired_config is not None and client.desired_config.version == 1
        collector.publish(
            desired_topic,
            orjson.dumps({"v": 1, "version": 2, "config": {"sample_hz": 1, "mode": "turbo"}}),
            retain=True,
        )
        collector.wait_for(lambda: reported(2) is not None)
    first, second = reported(1), reported(2)
    assert first is not None and second is not None
    assert first["status"] == "applied" and first["config"] == {"sample_hz": 10.0, "mode": "eco"}
    assert second["status"] == "rejected" and "turbo is not supported" in second["error"]
    assert applied == [1]


def test_async_client_with_async_handlers(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    collector = collector_factory(broker, topic_root)

    async def main() -> list[int]:
        client = AsyncDeviceClient(make_config(broker.url))
        loop = asyncio.get_running_loop()

        @client.command("ping")
        async def ping(command: Command) -> dict[str, Any]:
            assert asyncio.get_running_loop() is loop  # runs on the client's loop
            await asyncio.sleep(0)
            return {"pong": command.args.get("n")}

        async with client:
            await client.wait_connected(5)
            seqs = [await client.record({"a": float(i)}) for i in range(100)]
            seqs += list(await client.record_many([(None, {"a": 1.0})] * 10))
            seqs.append(await client.usage("session", duration_s=1.5))
            seqs.append(await client.event("maintenance", message="filter changed"))
            await asyncio.to_thread(
                send_command,
                collector,
                topic_root,
                "dev-1",
                {"v": 1, "id": "p1", "name": "ping", "args": {"n": 7}},
            )
            await client.flush(5)
            for _ in range(200):
                if replies_by_id(collector):
                    break
                await asyncio.sleep(0.02)
            assert client.health().sent == len(seqs)
        return seqs

    seqs = asyncio.run(main())
    collector.wait_for(lambda: collector.seqs("dev-1") == set(seqs))
    assert replies_by_id(collector)["p1"]["result"] == {"pong": 7}
