"""``fleetcare up``: the backend services as supervised child processes, end to end."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from backend.ingest.loadgen import FleetSpec, register_fleet
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from tests.foundation.conftest import settings_env_names

pytestmark = pytest.mark.services

device_sdk = pytest.importorskip("device_sdk")

DURATION_S = 20
READINGS = 5
METRICS = ("flow_lpm", "pressure_bar")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            body: dict[str, object] = json.loads(response.read())
            return body if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return check()


#: Readings of one fleet's devices in the telemetry table, and counted in the daily rollup
#: (one metric's counts); health scores stored.
STORED = (
    "SELECT count(DISTINCT (t.device_id, t.seq)) FROM telemetry t "
    "JOIN devices d ON d.id = t.device_id WHERE d.external_id LIKE %s"
)
ROLLED_UP = (
    "SELECT coalesce(sum(r.n), 0) FROM telemetry_daily r "
    "JOIN devices d ON d.id = r.device_id WHERE d.external_id LIKE %s AND r.position = 1"
)
HEALTH_SCORES = "SELECT count(*) FROM health_scores"
DESIRED_SENT = (
    "SELECT count(*) FROM device_twins t JOIN devices d ON d.id = t.device_id "
    "WHERE d.external_id LIKE %s AND t.desired_sent_version = t.desired_version"
)


def _set_desired(database_url: str, device: str, config: dict[str, object]) -> None:
    """What ``PUT /devices/{id}/twin/desired`` writes, and its notification."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO device_twins (device_id, desired, desired_version, desired_at)"
            " SELECT id, %s::jsonb, 1, now() FROM devices WHERE external_id = %s",
            (json.dumps(config), device),
        )
        conn.execute("SELECT pg_notify('fleetcare_downlink', '')")


def _count(database_url: str, query: str, *params: object) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _publish(broker_url: str, root: str, device_id: str, queue: Path) -> None:
    config = device_sdk.DeviceConfig(
        device_id=device_id, broker_urls=(broker_url,), queue_path=queue, topic_root=root
    )
    client = device_sdk.DeviceClient(config)
    client.start()
    try:
        client.wait_connected(10)
        for i in range(READINGS):
            client.record({"flow_lpm": 10.0 + i, "pressure_bar": 2.5})
        client.flush(10)
    finally:
        client.stop(5)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (``up`` stops its services), then SIGKILL for the whole process group."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of it and its services
    process.communicate(timeout=10)


def test_up_runs_the_backend_for_its_duration_and_stops_cleanly(
    fresh_database_url: str,
    mosquitto_factory: Callable[..., MosquittoBroker],
    topic_root: str,
    tmp_path: Path,
) -> None:
    extra = ("user root",) if os.geteuid() == 0 else ()
    broker = mosquitto_factory(MosquittoConfig(extra_lines=extra))
    root = f"{topic_root}/{secrets.token_hex(4)}"
    api_port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in settings_env_names()}
    env.update(
        FLEETCARE_DATABASE_URL=fresh_database_url,
        FLEETCARE_BROKER_URL=broker.url,
        FLEETCARE_TOPIC_ROOT=root,
        FLEETCARE_API_PORT=str(api_port),
        FLEETCARE_DATA_DIR=str(tmp_path / "data"),
        FLEETCARE_SCORING_METRICS_PORT="0",
        FLEETCARE_INGEST_METRICS_PORT="0",
        FLEETCARE_INGEST_CLIENT_ID_PREFIX=f"up-{secrets.token_hex(4)}",
        FLEETCARE_MAINTENANCE_INTERVAL_S="1",
        FLEETCARE_CUSTOMERS_HEALTH_INTERVAL_S="1",
    )
    env.pop("FLEETCARE_CONFIG", None)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetcare.cli", "up", "--duration", str(DURATION_S)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its services share its process group: cleanup reaches them
    )
    try:
        assert _wait_for(lambda: _health(api_port) is not None, DURATION_S - 5), (
            f"the API never answered /health on port {api_port}"
        )
        with psycopg.connect(fresh_database_url) as conn:
            conn.execute("INSERT INTO accounts (customer_key, name) VALUES ('acme', 'Acme')")
        spec = FleetSpec(prefix=f"up{secrets.token_hex(3)}", devices=1, metrics=METRICS)
        register_fleet(fresh_database_url, spec)
        _publish(broker.url, root, spec.device_id(0), tmp_path / "queue")
        assert _wait_for(
            lambda: _count(fresh_database_url, STORED, spec.prefix + "-%") >= READINGS,
            max(1.0, DURATION_S - (time.monotonic() - started) - 1),
        ), "the readings never reached the telemetry table"
        # Nothing but the maintain service refreshes the rollups on plain PostgreSQL.
        assert _wait_for(
            lambda: _count(fresh_database_url, ROLLED_UP, spec.prefix + "-%") == READINGS,
            max(1.0, DURATION_S - (time.monotonic() - started) - 1),
        ), "the readings never reached the daily rollup"
        assert _wait_for(
            lambda: _count(fresh_database_url, HEALTH_SCORES) >= 1,
            max(1.0, DURATION_S - (time.monotonic() - started) - 1),
        ), "the health service never scored the account"
        _set_desired(fresh_database_url, spec.device_id(0), {"sample_s": 30})
        assert _wait_for(
            lambda: _count(fresh_database_url, DESIRED_SENT, spec.prefix + "-%") == 1,
            max(1.0, DURATION_S - (time.monotonic() - started) - 1),
        ), "the downlink service never published the desired config"
        output, _ = process.communicate(timeout=DURATION_S + 20)
    finally:
        if process.poll() is None:
            _stop(process)
    assert process.returncode == 0, output
    assert "stopped (duration elapsed)" in output, output
    assert "restarted" not in output, output
    for service in ("ingest", "score", "care", "health", "api", "maintain", "downlink"):
        assert f"  {service}" in output, output
    assert _health(api_port) is None, "the API still answers after `up` stopped"
