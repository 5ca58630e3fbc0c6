"""The downlink service: fan-out of desired configs and commands to a fleet, and the round
trip of one command, beside a baseline in the same run.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.downlink.bench_downlink``
(defaults: 2,000 devices, 3 runs each).

1. Fan-out: one desired config for every device (one transaction and one notification, as
   a bulk ``PUT`` would leave them), timed from the commit until every device's report is
   stored; then one command per device, until every reply is stored. The service as
   shipped publishes a batch and then waits for the broker's acknowledgements
   (``publish_all`` over ``batch_size`` 500); the baseline waits for each acknowledgement
   before the next publish (``batch_size`` 1), as a publish-and-wait loop would.
2. Round trip: one command at a time, 200 ms apart, from the commit of ``POST /commands``'
   row to the stored reply, 200 times: the service woken by the API's notification against the same
   service relying on its poll (``FLEETCARE_DOWNLINK_POLL_INTERVAL_S``, 5 s by default;
   1 s here).

The devices are one MQTT client that answers for all of them (a reply per command, an
applied report per config), so the figures are the backend's. A private mosquitto and a
scratch database on ``--server`` (default the local PostgreSQL) are made and removed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from backend.downlink.commands import NewCommand, queue_command, wake_downlink
from backend.downlink.link import DownlinkLink
from backend.downlink.service import DownlinkService
from backend.downlink.settings import DownlinkSettings
from backend.storage.catalogue import MetricSpec, ensure_device_model
from backend.storage.migrator import apply_migrations
from benchmarks.scratch_database import SHARED_SERVER, scratch_database
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig

ROOT = "bench"
#: Between two commands of the round-trip measurement.
PAUSE_S = 0.2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class DeviceFarm:
    """One client answering for every device under ``root``: an applied report per desired
    config, an ``ok`` reply per command. ``subscribed`` is set once the broker confirmed
    its subscriptions (a command published before then reaches nobody)."""

    def __init__(self, port: int, root: str = ROOT) -> None:
        self.root = root
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-farm")
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        root = self.root
        client.subscribe([(f"{root}/v1/+/config/desired", 1), (f"{root}/v1/+/commands", 1)])

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[2]
        body = orjson.loads(msg.payload)
        now = int(time.time() * 1000)
        if msg.topic.endswith("/commands"):
            answer = {
                "v": 1,
                "device": device,
                "id": body["id"],
                "status": "ok",
                "result": {},
                "t": now,
            }
            client.publish(f"{self.root}/v1/{device}/commands/reply", orjson.dumps(answer), qos=1)
        else:
            report = {
                "v": 1,
                "device": device,
                "version": body["version"],
                "status": "applied",
                "config": body["config"],
                "t": now,
            }
            client.publish(f"{self.root}/v1/{device}/config/reported", orjson.dumps(report), qos=1)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextmanager
def running_service(url: str, broker: str, settings: DownlinkSettings) -> Iterator[None]:
    wake = threading.Event()
    link = DownlinkLink(broker, ROOT, f"bench-{time.time_ns()}", protocol="5", wake=wake)
    service = DownlinkService(url, link, settings, root=ROOT, wake=wake)
    link.start()
    if not link.wait_connected(10):
        raise RuntimeError("the downlink service could not connect to the benchmark broker")
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # its subscriptions
        yield
    finally:
        stop.set()
        wake.set()
        thread.join(10)
        link.stop()


def seed(url: str, devices: int) -> list[int]:
    with psycopg.connect(url) as conn:
        model = ensure_device_model(conn, "bench-pump", "pump", [MetricSpec("temp_c")])
        rows = conn.execute(
            "INSERT INTO devices (external_id, model_id) SELECT 'dev-' || n, %s"
            " FROM generate_series(1, %s) AS n RETURNING id",
            (model, devices),
        ).fetchall()
        conn.execute("INSERT INTO device_twins (device_id) SELECT id FROM devices")
    return [int(r[0]) for r in rows]


def count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return 0 if row is None else int(row[0])


def wait_count(url: str, query: str, target: int, timeout_s: float = 300.0) -> float:
    started = time.perf_counter()
    while count(url, query) < target:
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"timed out: {query}")
        time.sleep(0.02)
    return time.perf_counter() - started


def fan_out(
    url: str, broker: str, ids: list[int], batch_size: int, version: int
) -> tuple[float, float]:
    """Seconds until every device reported desired ``version``; then replied a command."""
    settings = DownlinkSettings(batch_size=batch_size, poll_interval_s=1.0)
    with running_service(url, broker, settings):
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE device_twins SET desired = %s::jsonb, desired_version = %s,"
                " desired_at = now()",
                (json.dumps({"version": version}), version),
            )
            wake_downlink(conn)
        config_s = wait_count(
            url, f"SELECT count(*) FROM device_twins WHERE reported_version = {version}", len(ids)
        )
        before = count(url, "SELECT count(*) FROM device_commands WHERE status = 'ok'")
        with psycopg.connect(url) as conn:
            for device in ids:
                queue_command(
                    conn, device, NewCommand(name="ping"), requested_by="bench", default_ttl_s=600
                )
        commands_s = wait_count(
            url, "SELECT count(*) FROM device_commands WHERE status = 'ok'", before + len(ids)
        )
    return config_s, commands_s


def round_trips(url: str, broker: str, device: int, rounds: int, notify: bool) -> list[float]:
    settings = DownlinkSettings(poll_interval_s=1.0)
    seconds: list[float] = []
    with running_service(url, broker, settings), psycopg.connect(url, autocommit=True) as conn:
        for _ in range(rounds):
            time.sleep(PAUSE_S)  # requests a person makes, not a burst
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO device_commands (command_id, device_id, name, requested_by,"
                    " expires_at) VALUES ('cmd-' || md5(random()::text), %s, 'ping', 'bench',"
                    " now() + interval '10 minutes') RETURNING id",
                    (device,),
                ).fetchone()
                assert row is not None
                if notify:
                    wake_downlink(conn)
            started = time.perf_counter()
            while True:
                status = conn.execute(
                    "SELECT status FROM device_commands WHERE id = %s", (row[0],)
                ).fetchone()
                if status is not None and status[0] == "ok":
                    break
                time.sleep(0.002)
            seconds.append(time.perf_counter() - started)
    return seconds


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--server", default=SHARED_SERVER)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-downlink-") as work,
        scratch_database(args.server, "bench_downlink") as url,
    ):
        broker = MosquittoBroker(Path(work) / "mosquitto", MosquittoConfig())
        broker.start()
        farm = DeviceFarm(broker.port)
        if not farm.subscribed.wait(30):
            raise RuntimeError("the device farm's subscriptions were not confirmed")
        try:
            apply_migrations(url, dialect="postgres")
            ids = seed(url, args.devices)
            results: dict[str, list[tuple[float, float]]] = {"pipelined": [], "one at a time": []}
            version = 0
            for run in range(args.runs):  # alternate, so both see the same machine
                for name, batch in (("pipelined", 500), ("one at a time", 1)):
                    version += 1
                    config_s, commands_s = fan_out(url, broker.url, ids, batch, version)
                    results[name].append((config_s, commands_s))
                    log(
                        f"run {run + 1} {name}: configs {config_s:.2f} s, "
                        f"commands {commands_s:.2f} s"
                    )
            notified = round_trips(url, broker.url, ids[0], args.round_trips, notify=True)
            polled = round_trips(
                url, broker.url, ids[0], max(20, args.round_trips // 10), notify=False
            )
        finally:
            farm.stop()
            broker.kill()
    n = args.devices
    print(f"\n### Downlink fan-out, {n:,} devices (median of {args.runs} runs)\n")
    print(
        "| service | desired configs: all reported | configs/s | commands: all answered"
        " | commands/s |"
    )
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for name, runs in results.items():
        config = statistics.median(r[0] for r in runs)
        commands = statistics.median(r[1] for r in runs)
        medians[name] = (config, commands)
        print(
            f"| {name} | {config:.2f} s | {n / config:,.0f} | {commands:.2f} s"
            f" | {n / commands:,.0f} |"
        )
    base, ours = medians["one at a time"], medians["pipelined"]
    print(
        f"| **pipelined / one at a time** | **{base[0] / ours[0]:.1f}x** | |"
        f" **{base[1] / ours[1]:.1f}x** | |"
    )
    print("\n### One command's round trip (commit to stored reply)\n")
    print("| wake-up | commands | median | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (("notification (as shipped)", notified), ("poll every 1 s", polled)):
        print(
            f"| {name} | {len(values)} | {statistics.median(values) * 1000:.1f} ms |"
            f" {_p(values, 0.95) * 1000:.1f} ms | {max(values) * 1000:.1f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
