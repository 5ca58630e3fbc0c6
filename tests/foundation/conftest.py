"""Fixtures for the foundation tests: a clean fleetcare environment and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.settings import BackendSettings
from fleetcare.config import CONFIG_FILE_ENV, ENV_PREFIX
from fleetcare.embedded.broker import BROKER_CHOICE_ENV


def settings_env_names() -> list[str]:
    """Every environment variable BackendSettings reads, derived from the class."""
    return [
        info.alias or f"{ENV_PREFIX}{name}".upper()
        for name, info in BackendSettings.model_fields.items()
    ]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No fleetcare setting from the caller's environment; a private data directory.

    Returns the data directory (short path: the embedded PostgreSQL socket may live there).
    """
    for name in [*settings_env_names(), CONFIG_FILE_ENV, BROKER_CHOICE_ENV]:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FLEETCARE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COLUMNS", "220")  # rich tables: keep URLs on one line
    return data_dir


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fleetcare.cli ARGS`` in a child process with ``os.environ`` (+ ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "fleetcare.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def force_amqtt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_CHOICE_ENV, "amqtt")
