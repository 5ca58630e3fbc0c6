"""``fleetcare downlink``: queue a command and list a device's; run the service for a while."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from fleetcare.cli.app import build_app
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.cli_output import said
from tests.downlink.conftest import ROOT, Device, set_desired, twin_row

pytestmark = pytest.mark.services


def test_command_and_list(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", db)
    runner, app = CliRunner(), build_app()
    queued = runner.invoke(
        app, ["downlink", "command", "pump-2", "self_test", "--args", '{"depth": 3}', "--ttl", "90"]
    )
    assert queued.exit_code == 0, queued.output
    command_id = queued.output.split()[0]
    assert command_id.startswith("cmd-") and "queued for pump-2" in queued.output
    listed = runner.invoke(app, ["downlink", "list", "pump-2"])
    assert listed.exit_code == 0, listed.output
    assert f"{command_id} self_test queued" in listed.output
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT args, requested_by, extract(epoch FROM expires_at - created_at)"
            " FROM device_commands WHERE command_id = %s",
            (command_id,),
        ).fetchone()
    assert row is not None and row[0] == {"depth": 3} and row[1] == "cli"
    assert float(row[2]) == pytest.approx(90, abs=1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pump-9", "self_test"], "no device 'pump-9' is registered"),
        (["pump-2", "self_test", "--args", "{oops"], "not a command"),
        (["pump-2", "self_test", "--args", "[1]"], "not a command"),
        (["pump-2", "9lives"], "not a command"),
    ],
)
def test_a_bad_command_is_refused_and_nothing_queued(
    db: str, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", db)
    result = CliRunner().invoke(build_app(), ["downlink", "command", *argv])
    assert result.exit_code == 2
    assert message in said(result.output)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)


def test_run_delivers_for_its_duration(
    db: str, mosquitto: MosquittoBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", db)
    monkeypatch.setenv("FLEETCARE_BROKER_URL", mosquitto.url)
    monkeypatch.setenv("FLEETCARE_TOPIC_ROOT", ROOT)
    with Device("pump-1", mosquitto.url, tmp_path / "q") as device:
        version = set_desired(db, "pump-1", {"sample_s": 7})
        result = CliRunner().invoke(build_app(), ["downlink", "run", "--duration", "4"])
    assert result.exit_code == 0, result.output
    assert "sent 1 desired config(s)" in result.output
    assert device.applied == [version]
    assert twin_row(db, "pump-1")["status"] == "applied"
