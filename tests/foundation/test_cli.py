"""The fleetcare command line: clear failures, doctor, demo and services on the embedded path."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetcare.cli.app import build_app
from tests.foundation.conftest import run_cli


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def test_a_malformed_setting_names_the_key_and_exits_2(
    clean_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_API_PORT", "abc")
    result = runner.invoke(build_app(), ["doctor"])
    assert result.exit_code == 2, result.output
    assert "FLEETCARE_API_PORT" in result.stderr
    assert "'abc'" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_malformed_setting_in_a_real_process_prints_no_traceback(clean_env: Path) -> None:
    result = run_cli("demo", "--duration", "0", env={"FLEETCARE_CONNECT_TIMEOUT_S": "-1"})
    assert result.returncode == 2
    assert "FLEETCARE_CONNECT_TIMEOUT_S" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bad_key_in_the_config_file_is_named(
    clean_env: Path, runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "fleetcare.toml"
    config.write_text('api_port = 8001\ndatabse_url = "postgresql://x@y/z"\n')
    result = runner.invoke(build_app(), ["--config", str(config), "db", "status"])
    assert result.exit_code == 2
    assert "databse_url" in result.stderr.lower()
    assert "unknown setting" in result.stderr


def test_a_missing_config_file_is_a_clear_error(clean_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["--config", "/nonexistent/fleetcare.toml", "doctor"])
    assert result.exit_code == 2
    assert "/nonexistent/fleetcare.toml" in result.stderr
    assert "does not exist" in result.stderr


def test_an_unreachable_database_is_named_with_the_password_redacted(
    clean_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/fleetcare")
    monkeypatch.setenv("FLEETCARE_CONNECT_TIMEOUT_S", "1")
    result = runner.invoke(build_app(), ["db", "migrate"])
    assert result.exit_code == 2, result.output
    assert "postgresql://app:***@127.0.0.1:1/fleetcare" in result.stderr
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_doctor_fails_on_an_unreachable_broker(
    clean_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_BROKER_URL", "mqtt://user:pw@127.0.0.1:1")
    result = runner.invoke(build_app(), ["doctor"])
    assert result.exit_code == 1, result.output
    row = next(line for line in result.stdout.splitlines() if "mqtt broker" in line)
    assert "FAIL" in row
    assert "user:***@127.0.0.1:1" in result.stdout
    assert "pw@" not in result.stdout


@pytest.mark.services
def test_doctor_against_the_shared_services(
    clean_env: Path,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    shared_broker_url: str,
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", database_url)
    monkeypatch.setenv("FLEETCARE_BROKER_URL", shared_broker_url)
    result = runner.invoke(build_app(), ["doctor"])
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if (cells := [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]])
    }
    assert rows["database"][0] == "ok"
    assert rows["database"][1].startswith("PostgreSQL ")
    assert rows["mqtt broker"][0] == "ok"
    assert "MQTT 5" in rows["mqtt broker"][1]
    assert rows["migrations"][0] in {"ok", "warn"}
    assert rows["data directory"][0] == "ok"


@pytest.mark.embedded
def test_demo_runs_on_embedded_services_and_exits_cleanly(clean_env: Path) -> None:
    started = time.monotonic()
    result = run_cli("demo", "--duration", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "started embedded PostgreSQL" in out
    assert "started embedded MQTT broker" in out
    assert "dialect" in out
    assert "migrations" in out
    assert "duration elapsed" in out
    assert 2 <= elapsed < 45
    assert "Traceback" not in result.stderr
    assert not (clean_env / "postgres" / "postmaster.pid").exists(), "PostgreSQL left running"
    # A second run reuses the data directory: nothing new to migrate.
    again = run_cli("demo", "--duration", "0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "none new" in again.stdout


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.embedded
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_services_up_prints_exports_and_stops_on_a_signal(
    clean_env: Path, stop_signal: signal.Signals
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fleetcare.cli", "services", "up"],
        env={**os.environ, "FLEETCARE_EMBEDDED_BROKER": "amqtt"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background may inherit an ignored SIGINT
        preexec_fn=_interruptible,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("running until"):
            break
    exports = {
        name: value
        for line in lines
        if (match := re.match(r"export (FLEETCARE_\w+)=(.*)", line))
        for name, value in [match.groups()]
    }
    assert set(exports) == {"FLEETCARE_DATABASE_URL", "FLEETCARE_BROKER_URL"}, lines
    port = int(exports["FLEETCARE_BROKER_URL"].rsplit(":", 1)[1])
    assert _port_open("127.0.0.1", port)
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopping (interrupted)" in out
    assert out.rstrip().endswith("stopped")
    assert not _port_open("127.0.0.1", port)
    assert not (clean_env / "postgres" / "postmaster.pid").exists()


def test_services_up_with_everything_configured_starts_nothing(
    clean_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", "postgresql://fc:pw@db.example/fc")
    monkeypatch.setenv("FLEETCARE_BROKER_URL", "mqtt://broker.example:1883")
    result = runner.invoke(build_app(), ["services", "up", "--duration", "0"])
    assert result.exit_code == 0, result.output
    assert "export" not in result.stdout
    assert "postgresql://fc:***@db.example/fc" in result.stdout
    assert not clean_env.exists()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("fleetcare ")
