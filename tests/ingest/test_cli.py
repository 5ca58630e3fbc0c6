"""``python -m backend.ingest`` (``fleetcare ingest`` once mounted): start, stop, refuse clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.helpers import REPO_ROOT, as_url

pytestmark = pytest.mark.services


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.ingest", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = run_cli({}, "--help")
    assert result.returncode == 0
    for word in ("run", "dlq", "--workers", "--duration"):
        assert word in result.stdout


def test_runs_for_a_duration_and_stops_cleanly(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, tmp_path: Path
) -> None:
    env = {
        "FLEETCARE_DATABASE_URL": ingest_db,
        "FLEETCARE_BROKER_URL": mosquitto.url,
        "FLEETCARE_TOPIC_ROOT": root,
        "FLEETCARE_INGEST_METRICS_PORT": "0",
        "FLEETCARE_INGEST_CLIENT_ID_PREFIX": f"cli-{os.getpid()}",
        "FLEETCARE_DATA_DIR": str(tmp_path),
    }
    result = run_cli(env, "--duration", "2")
    assert result.returncode == 0, result.stderr
    assert "MQTT 5" in result.stderr
    assert "metrics on http://127.0.0.1:" in result.stderr


def test_an_unmigrated_database_is_refused_with_a_hint(
    fresh_database_url: str, mosquitto: MosquittoBroker, root: str, tmp_path: Path
) -> None:
    env = {
        "FLEETCARE_DATABASE_URL": as_url(fresh_database_url),
        "FLEETCARE_BROKER_URL": mosquitto.url,
        "FLEETCARE_TOPIC_ROOT": root,
        "FLEETCARE_INGEST_METRICS_PORT": "none",
        "FLEETCARE_DATA_DIR": str(tmp_path),
    }
    result = run_cli(env, "run", "--duration", "1")
    assert result.returncode == 2
    assert "fleetcare db migrate" in result.stderr
    assert "--migrate" in result.stderr
    migrated = run_cli(env, "run", "--duration", "1", "--migrate")
    assert migrated.returncode == 0, migrated.stderr
