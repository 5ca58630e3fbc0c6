"""Shared by the downlink tests: a database with three devices, the service in a thread,
a device program on the SDK, and what the API would write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.downlink.commands import NewCommand, queue_command
from backend.downlink.link import DownlinkLink
from backend.downlink.service import DownlinkService
from backend.downlink.settings import DownlinkSettings
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.migrator import apply_migrations
from device_sdk import Command, DesiredConfig, DeviceClient, DeviceConfig

ROOT = "fcdown"


def wait_for(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


@pytest.fixture
def db(fresh_database_url: str) -> str:
    apply_migrations(fresh_database_url, dialect="postgres")
    with psycopg.connect(fresh_database_url) as conn:
        model = ensure_device_model(conn, "pump-x", "pump", [MetricSpec("temp_c", unit="degC")])
        for name in ("pump-1", "pump-2", "pump-3"):
            ensure_device(conn, name, model)
    return fresh_database_url


def device_id(url: str, ref: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM devices WHERE external_id = %s", (ref,)).fetchone()
    assert row is not None
    return int(row[0])


def set_desired(url: str, ref: str, config: dict[str, Any]) -> int:
    """What the API's PUT does: a new desired version, and a notification."""
    with psycopg.connect(url) as conn:
        dev = device_id(url, ref)
        conn.execute(
            "INSERT INTO device_twins (device_id) VALUES (%s) ON CONFLICT DO NOTHING", (dev,)
        )
        row = conn.execute(
            "UPDATE device_twins SET desired = %s::jsonb, desired_version = desired_version + 1,"
            " desired_at = now() WHERE device_id = %s RETURNING desired_version",
            (json.dumps(config), dev),
        ).fetchone()
        conn.execute("SELECT pg_notify('fleetcare_downlink', '')")
    assert row is not None
    return int(row[0])


def send_command(url: str, ref: str, name: str, args: dict[str, Any], ttl_s: int = 60) -> str:
    with psycopg.connect(url) as conn:
        record = queue_command(
            conn,
            device_id(url, ref),
            NewCommand(name=name, args=args, ttl_s=ttl_s),
            requested_by="test",
            default_ttl_s=60,
        ).record
    return record.id


def command_row(url: str, command_id: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status, result, error, attempts, sent_at FROM device_commands"
            " WHERE command_id = %s",
            (command_id,),
        ).fetchone()
    assert row is not None
    return {
        "status": row[0],
        "result": row[1],
        "error": row[2],
        "attempts": row[3],
        "sent_at": row[4],
    }


def twin_row(url: str, ref: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT desired_version, desired_sent_version, reported, reported_version,"
            " reported_status, reported_error FROM device_twins WHERE device_id = %s",
            (device_id(url, ref),),
        ).fetchone()
    assert row is not None
    keys = ("desired_version", "sent", "reported", "reported_version", "status", "error")
    return dict(zip(keys, row, strict=True))


@dataclass
class RunningService:
    service: DownlinkService
    link: DownlinkLink
    stop: threading.Event
    thread: threading.Thread

    def halt(self) -> None:
        self.stop.set()
        self.service.wake.set()
        self.thread.join(10)
        self.link.stop()


@pytest.fixture
def start_service(db: str) -> Iterator[Callable[..., RunningService]]:
    running: list[RunningService] = []

    def start(
        broker_url: str, protocol: str = "5", root: str = ROOT, **overrides: Any
    ) -> RunningService:
        settings = DownlinkSettings(
            **{"poll_interval_s": 0.5, "retry_interval_s": 1.0, **overrides}
        )
        wake = threading.Event()
        link = DownlinkLink(broker_url, root, settings.client_id, protocol=protocol, wake=wake)  # type: ignore[arg-type]
        service = DownlinkService(db, link, settings, root=root, wake=wake)
        link.start()
        assert link.wait_connected(10)
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        one = RunningService(service, link, stop, thread)
        running.append(one)
        return one

    yield start
    for one in running:
        one.halt()


class Device:
    """A device program on the SDK: applies ``sample_s`` between 1 and 3600, runs commands."""

    def __init__(self, ref: str, broker_url: str, queue_path: Path, root: str = ROOT) -> None:
        self.applied: list[int] = []
        self.ran: list[str] = []
        self.started = False
        self._hold: threading.Event | None = None
        config = DeviceConfig(
            device_id=ref,
            broker_urls=[broker_url],
            queue_path=queue_path,
            topic_root=root,
        )
        self.client = DeviceClient(config)

        @self.client.on_config
        def apply(desired: DesiredConfig) -> dict[str, Any]:
            sample = desired.config.get("sample_s")
            if not isinstance(sample, int) or not 1 <= sample <= 3600:
                raise ValueError(f"sample_s must be an integer 1-3600, got {sample!r}")
            self.applied.append(desired.version)
            return {"sample_s": sample}

        @self.client.command("self_test")
        def self_test(cmd: Command) -> dict[str, Any]:
            self.started = True
            if self._hold is not None:
                self._hold.wait(30)
            self.ran.append(cmd.id)
            return {"passed": True, "depth": cmd.args.get("depth", 1)}

        @self.client.command("explode")
        def explode(cmd: Command) -> dict[str, Any]:
            raise RuntimeError("refused to explode")

    def hold_commands(self) -> threading.Event:
        """Commands wait in their handler until the returned event is set."""
        self._hold = threading.Event()
        return self._hold

    def __enter__(self) -> Device:
        self.client.start()
        self.client.wait_connected(10)
        time.sleep(0.3)  # its SUBSCRIBE follows the CONNACK
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.stop()
