"""The downlink service end to end: API rows → broker → a real device SDK client → answers
stored; across a device that is offline, a broker that restarts and a service restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backend.downlink.commands import NewCommand, queue_command
from benchmarks.downlink.bench_downlink import DeviceFarm
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.downlink.conftest import (
    ROOT,
    Device,
    RunningService,
    command_row,
    device_id,
    send_command,
    set_desired,
    twin_row,
    wait_for,
)

pytestmark = pytest.mark.services


def test_desired_config_reaches_the_device_and_its_answer_is_stored(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    running = start_service(mosquitto.url)
    with Device("pump-1", mosquitto.url, tmp_path / "q1") as device:
        version = set_desired(db, "pump-1", {"sample_s": 30})
        wait_for(lambda: twin_row(db, "pump-1")["status"] == "applied", what="applied report")
        twin = twin_row(db, "pump-1")
        assert device.applied == [version]
        assert twin["sent"] == version == twin["reported_version"]
        assert twin["reported"] == {"sample_s": 30}
        # A config the device refuses: reported as rejected, with the device's reason, and
        # what the device runs stays the applied one.
        bad = set_desired(db, "pump-1", {"sample_s": 0})
        wait_for(lambda: twin_row(db, "pump-1")["status"] == "rejected", what="rejection")
        twin = twin_row(db, "pump-1")
        assert twin["reported_version"] == bad
        assert "sample_s must be an integer" in twin["error"]
        assert twin["reported"] == {"sample_s": 30}
    assert running.service.counts.desired_sent == 2
    assert running.service.counts.reports_stored >= 2


def test_a_device_offline_gets_its_config_and_commands_when_it_connects(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    """Desired config is retained; a command waits in the device's persistent session, or,
    for a device the broker has never seen (MQTT 5: no subscriber), in the database."""
    running = start_service(mosquitto.url)
    # pump-2 has a session on the broker (it connected once), pump-3 never connected.
    with Device("pump-2", mosquitto.url, tmp_path / "q2"):
        pass
    version = set_desired(db, "pump-2", {"sample_s": 120})
    known = send_command(db, "pump-2", "self_test", {"depth": 2})
    never_seen = send_command(db, "pump-3", "self_test", {})
    wait_for(lambda: command_row(db, known)["status"] == "sent", what="queued in session")
    wait_for(lambda: command_row(db, never_seen)["attempts"] >= 1, what="first attempt")
    assert command_row(db, never_seen)["status"] == "queued"
    assert "no session" in command_row(db, never_seen)["error"]
    assert twin_row(db, "pump-2")["sent"] == version

    with Device("pump-2", mosquitto.url, tmp_path / "q2") as device2:
        wait_for(lambda: command_row(db, known)["status"] == "ok", what="reply after connect")
        wait_for(lambda: twin_row(db, "pump-2")["status"] == "applied", what="report")
        assert device2.ran == [known]
        assert command_row(db, known)["result"] == {"passed": True, "depth": 2}
    with Device("pump-3", mosquitto.url, tmp_path / "q3") as device3:
        wait_for(lambda: command_row(db, never_seen)["status"] == "ok", what="retried command")
        assert device3.ran == [never_seen]
    assert running.service.counts.commands_postponed >= 1


def test_command_answers_errors_unknown_names_and_expiry(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    start_service(mosquitto.url)
    with Device("pump-1", mosquitto.url, tmp_path / "q1"):
        failing = send_command(db, "pump-1", "explode", {})
        unknown = send_command(db, "pump-1", "make_coffee", {})
        wait_for(lambda: command_row(db, failing)["status"] == "error", what="error reply")
        wait_for(lambda: command_row(db, unknown)["status"] == "unknown", what="unknown reply")
        assert "refused to explode" in command_row(db, failing)["error"]
        assert "make_coffee" in command_row(db, unknown)["error"]
    # pump-3 never connects: its command expires, with the reason.
    lost = send_command(db, "pump-3", "self_test", {}, ttl_s=1)
    wait_for(lambda: command_row(db, lost)["status"] == "expired", what="expiry")
    assert command_row(db, lost)["error"] == (
        "not delivered before it expired (the device has no session on the broker)"
    )


def test_answers_wait_on_the_broker_while_the_service_is_down(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    """The service's persistent session keeps the replies that arrive while it is stopped."""
    first = start_service(mosquitto.url)
    with Device("pump-1", mosquitto.url, tmp_path / "q1") as device:
        # Stop the service the moment the command is sent, before the reply is stored.
        command = send_command(db, "pump-1", "self_test", {})
        wait_for(lambda: device.ran, what="command ran")
        first.halt()
        set_desired(db, "pump-1", {"sample_s": 5})  # waits in the database meanwhile
        time.sleep(0.5)
        second = start_service(mosquitto.url)
        wait_for(lambda: command_row(db, command)["status"] == "ok", what="reply after restart")
        wait_for(lambda: twin_row(db, "pump-1")["status"] == "applied", what="config after restart")
        assert device.ran == [command]
        assert second.service.counts.desired_sent == 1


def test_a_broker_restart_loses_nothing(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    running = start_service(mosquitto.url)
    with Device("pump-1", mosquitto.url, tmp_path / "q1") as device:
        warm = send_command(db, "pump-1", "self_test", {})
        wait_for(lambda: command_row(db, warm)["status"] == "ok", what="first reply")
        mosquitto.stop()
        command = send_command(db, "pump-1", "self_test", {"depth": 3})
        version = set_desired(db, "pump-1", {"sample_s": 60})
        time.sleep(1.0)
        assert command_row(db, command)["status"] == "queued"  # nothing to send it to
        mosquitto.start()
        wait_for(lambda: command_row(db, command)["status"] == "ok", 30, "reply after restart")
        wait_for(lambda: twin_row(db, "pump-1")["reported_version"] == version, 30, "report")
        assert device.ran == [warm, command]
    assert running.service.counts.commands_sent == 2


def test_hostile_and_malformed_answers_are_refused_and_kept(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
) -> None:
    running = start_service(mosquitto.url)
    other = send_command(db, "pump-2", "self_test", {})
    wait_for(lambda: command_row(db, other)["attempts"] >= 1, what="attempt")
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    spoofer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="spoofer")
    spoofer.connect(host, int(port))
    spoofer.loop_start()
    now_ms = int(time.time() * 1000)

    def publish(topic: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        spoofer.publish(topic, payload, qos=1).wait_for_publish(5)

    reply = {"v": 1, "id": other, "status": "ok", "result": {"owned": True}, "t": now_ms}
    # pump-1 answers pump-2's command: not its command.
    publish(f"{ROOT}/v1/pump-1/commands/reply", {**reply, "device": "pump-1"})
    # The payload claims to be pump-2 on pump-1's topic.
    publish(f"{ROOT}/v1/pump-1/commands/reply", {**reply, "device": "pump-2"})
    publish(f"{ROOT}/v1/pump-1/config/reported", b"{not json")
    # Valid JSON and a valid report, but PostgreSQL's jsonb refuses a NUL character.
    publish(
        f"{ROOT}/v1/pump-3/config/reported",
        b'{"v": 1, "device": "pump-3", "version": 1, "status": "applied",'
        b' "config": {"name": "a\\u0000b"}, "t": %d}' % now_ms,
    )
    publish(
        f"{ROOT}/v1/ghost-9/config/reported",
        {"v": 1, "device": "ghost-9", "version": 1, "status": "applied", "t": now_ms},
    )
    spoofer.loop_stop()
    spoofer.disconnect()

    def refusals() -> dict[str, int]:
        with psycopg.connect(db) as conn:
            rows = conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall()
        return {str(r): int(n) for r, n in rows}

    expected = {
        "unknown_command": 1,
        "device_mismatch": 1,
        "invalid_payload": 1,
        "unknown_device": 1,
        "unstorable": 1,
    }
    wait_for(lambda: refusals() == expected, what=f"dead letters {expected}")
    assert command_row(db, other)["status"] in {"queued", "sent"}
    assert command_row(db, other)["result"] is None
    assert running.service.counts.answers_refused == 5
    assert running.thread.is_alive()  # and still serving
    with psycopg.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM device_twins WHERE reported_at IS NOT NULL")
        assert stored.fetchone() == (0,)


def test_a_busy_device_gets_the_command_again(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
) -> None:
    start_service(mosquitto.url)
    host, port = mosquitto.url.removeprefix("mqtt://").split(":")
    received: list[dict[str, Any]] = []
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pump-1")

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        request = json.loads(msg.payload)
        received.append(request)
        status = "busy" if len(received) == 1 else "ok"
        answer = {
            "v": 1,
            "device": "pump-1",
            "id": request["id"],
            "status": status,
            "t": int(time.time() * 1000),
        }
        client.publish(f"{ROOT}/v1/pump-1/commands/reply", json.dumps(answer), qos=1)

    device.on_message = on_message
    device.connect(host, int(port))
    device.subscribe(f"{ROOT}/v1/pump-1/commands", qos=1)
    device.loop_start()
    try:
        time.sleep(0.3)
        command = send_command(db, "pump-1", "self_test", {})
        wait_for(lambda: command_row(db, command)["status"] == "ok", what="ok after busy")
    finally:
        device.loop_stop()
        device.disconnect()
    assert [r["id"] for r in received] == [command, command]
    assert command_row(db, command)["attempts"] == 2


def test_on_mqtt_3_1_1_commands_and_config_still_flow(
    db: str,
    mosquitto: MosquittoBroker,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    start_service(mosquitto.url, protocol="3.1.1")
    with Device("pump-1", mosquitto.url, tmp_path / "q1") as device:
        version = set_desired(db, "pump-1", {"sample_s": 10})
        command = send_command(db, "pump-1", "self_test", {})
        wait_for(lambda: command_row(db, command)["status"] == "ok", what="reply")
        wait_for(lambda: twin_row(db, "pump-1")["reported_version"] == version, what="report")
        assert device.applied == [version]


def test_expired_commands_are_not_sent_and_a_late_answer_still_counts(db: str) -> None:
    from backend.downlink.store import due_commands, expire_commands, record_reply
    from device_sdk.wire import CommandReply, ReplyStatus

    command = send_command(db, "pump-1", "self_test", {}, ttl_s=1)
    time.sleep(1.2)
    with psycopg.connect(db) as conn:
        assert expire_commands(conn) == 1
        assert due_commands(conn, 10) == []
        late = CommandReply(
            v=1,
            device="pump-1",
            id=command,
            status=ReplyStatus.OK,
            result={"late": True},
            t=int(time.time() * 1000),
        )
        stored = record_reply(conn, device_id(db, "pump-1"), late, busy_retry=timedelta(seconds=1))
        assert stored == "stored"
    assert command_row(db, command)["status"] == "ok"
    assert command_row(db, command)["result"] == {"late": True}


def test_a_fleet_wide_push_is_acknowledged_and_answered(
    db: str, mosquitto: MosquittoBroker, start_service: Callable[..., RunningService]
) -> None:
    """Hundreds of publishes in flight at once (paho acknowledges them on its own thread
    while the service is still publishing): every device gets its config and command."""
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO devices (external_id, model_id) SELECT 'bulk-' || n,"
            " (SELECT model_id FROM devices LIMIT 1) FROM generate_series(1, 600) AS n"
        )
    farm = DeviceFarm(int(mosquitto.url.rsplit(":", 1)[1]), root=ROOT)
    assert farm.subscribed.wait(10), "the device farm is not subscribed"
    running = start_service(mosquitto.url, batch_size=500)
    try:
        with psycopg.connect(db) as conn:
            conn.execute(
                "INSERT INTO device_twins (device_id, desired, desired_version, desired_at)"
                " SELECT id, '{\"eco\": true}', 1, now() FROM devices"
                " WHERE external_id LIKE 'bulk-%'"
            )
            for (dev,) in conn.execute(
                "SELECT id FROM devices WHERE external_id LIKE 'bulk-%'"
            ).fetchall():
                queue_command(
                    conn, int(dev), NewCommand(name="ping"), requested_by="test", default_ttl_s=60
                )

        def done(query: str) -> bool:
            with psycopg.connect(db) as conn:
                row = conn.execute(query).fetchone()
            return row is not None and row[0] == 600

        wait_for(
            lambda: done(
                "SELECT count(*) FROM device_twins WHERE reported_version = 1"
                " AND reported_status = 'applied'"
            ),
            60,
            "600 reports",
        )
        wait_for(
            lambda: done("SELECT count(*) FROM device_commands WHERE status = 'ok'"),
            60,
            "600 replies",
        )
    finally:
        farm.stop()
    assert running.service.counts.desired_sent == 600
    assert running.service.counts.commands_sent == 600
