"""A device behind a gateway gets its desired config and commands, and its answers reach the
backend: central broker → gateway → local broker → SDK device, and back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig, validate_model
from gateway.service import BackgroundGateway
from tests.downlink.conftest import (
    ROOT,
    Device,
    RunningService,
    command_row,
    send_command,
    set_desired,
    twin_row,
    wait_for,
)
from tests.fixtures.fix_mqtt import MosquittoFactory

pytestmark = pytest.mark.services

SITE_ROOT = "site"


def gateway_config(central: str, local: str, data_dir: Path) -> GatewayConfig:
    values = {
        "gateway_id": "gw-1",
        "data_dir": str(data_dir),
        "uplink": {
            "url": central,
            "topic_root": ROOT,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
        "local": {"url": local, "topic_root": SITE_ROOT},
    }
    return validate_model(GatewayConfig, values, "test configuration")


def test_commands_and_config_cross_the_gateway_both_ways(
    db: str,
    mosquitto_factory: MosquittoFactory,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    central, local = mosquitto_factory(), mosquitto_factory()
    start_service(central.url)
    with (
        BackgroundGateway(gateway_config(central.url, local.url, tmp_path / "gw")) as running,
        Device("pump-1", local.url, tmp_path / "q1", root=SITE_ROOT) as device,
    ):
        gateway = running.gateway
        assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
        device.client.record({"temp_c": 21.0})  # the gateway learns its site's devices
        wait_for(lambda: gateway.bridge is not None and "pump-1" in gateway.bridge.devices)
        time.sleep(0.3)  # the upstream SUBSCRIBE
        version = set_desired(db, "pump-1", {"sample_s": 15})
        command = send_command(db, "pump-1", "self_test", {"depth": 4})
        wait_for(lambda: command_row(db, command)["status"] == "ok", what="reply via gateway")
        wait_for(lambda: twin_row(db, "pump-1")["status"] == "applied", what="report")
        assert device.ran == [command]
        assert device.applied == [version]
        assert command_row(db, command)["result"] == {"passed": True, "depth": 4}
        assert twin_row(db, "pump-1")["reported"] == {"sample_s": 15}
        counts = gateway.metrics.snapshot()
        assert counts["downlink_forwarded"] >= 2
        assert counts["answers_forwarded"] >= 2


def test_answers_wait_for_the_uplink_and_commands_for_the_device(
    db: str,
    mosquitto_factory: MosquittoFactory,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    """The central broker goes away after a command reached the site: the reply waits in
    the gateway and reaches the backend once the broker is back."""
    central: MosquittoBroker = mosquitto_factory()
    local: MosquittoBroker = mosquitto_factory()
    start_service(central.url)
    with (
        BackgroundGateway(gateway_config(central.url, local.url, tmp_path / "gw")) as running,
        Device("pump-1", local.url, tmp_path / "q1", root=SITE_ROOT) as device,
    ):
        gateway = running.gateway
        assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
        device.client.record({"temp_c": 21.0})
        wait_for(lambda: gateway.bridge is not None and "pump-1" in gateway.bridge.devices)
        time.sleep(0.3)
        device_release = device.hold_commands()
        command = send_command(db, "pump-1", "self_test", {})
        wait_for(lambda: device.started, what="the command reached the device")
        central.stop()
        device_release.set()  # the reply is made while the uplink is down
        wait_for(lambda: device.ran == [command], what="the command ran")
        time.sleep(0.5)
        assert command_row(db, command)["status"] == "sent"
        central.start()
        wait_for(lambda: command_row(db, command)["status"] == "ok", 30, "reply after outage")
