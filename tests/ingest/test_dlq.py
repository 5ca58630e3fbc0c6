"""``fleetcare ingest dlq list|replay``: inspect dead letters, fix the cause, replay them."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from typer.testing import CliRunner

from backend.ingest.cli import app
from backend.ingest.metrics import IngestMetrics
from backend.ingest.service import build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from tests.ingest.helpers import dead_letters, inbound, telemetry_payload


@pytest.fixture
def cli_env(ingest_db: str, root: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"FLEETCARE_DATABASE_URL": ingest_db, "FLEETCARE_TOPIC_ROOT": root, "COLUMNS": "250"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def replay_results(ingest_db: str, root: str) -> list[tuple[str, str | None]]:
    with psycopg.connect(ingest_db) as conn:
        rows = conn.execute(
            "SELECT reason, replay_result FROM dead_letters WHERE topic LIKE %s ORDER BY id",
            (root + "/%",),
        ).fetchall()
    return [(str(r), v) for r, v in rows]


def test_list_then_replay_after_registering_the_device(
    ingest_db: str, root: str, cli_env: dict[str, str]
) -> None:
    device = f"late-{secrets.token_hex(3)}"
    writer = build_writer(
        ingest_db,
        root,
        IngestSettings(metrics_port=None, unknown_retry_s=0),
        database_dialect(ingest_db),
        IngestMetrics(),
    )
    try:
        writer.write(
            [
                inbound(
                    root, device, "telemetry", telemetry_payload(device, [1, 2, 3], {"x": 1.0})
                ),
                inbound(root, device, "telemetry", b"{broken"),
            ]
        )
    finally:
        writer.close()
    assert sorted(r for r, _, _ in dead_letters(ingest_db, root)) == ["malformed", "unknown_device"]

    runner = CliRunner()
    listed = runner.invoke(app, ["dlq", "list", "--reason", "unknown_device"])
    assert listed.exit_code == 0, listed.output
    assert "unknown_device" in listed.output
    assert device in listed.output

    with psycopg.connect(ingest_db) as conn:
        model = ensure_device_model(conn, f"m-{device}", "pump", [MetricSpec("x")])
        ensure_device(conn, device, model)

    replayed = runner.invoke(app, ["dlq", "replay", "--all"])
    assert replayed.exit_code == 0, replayed.output
    assert "stored 1" in replayed.output
    results = dict(replay_results(ingest_db, root))
    assert results["unknown_device"] == "stored"
    assert (results["malformed"] or "").startswith("rejected: malformed")
    with psycopg.connect(ingest_db) as conn:
        count = conn.execute(
            "SELECT count(*) FROM telemetry t JOIN devices d ON d.id = t.device_id "
            "WHERE d.external_id = %s",
            (device,),
        ).fetchone()
    assert count == (3,)
    # Replaying again is harmless: nothing pending, and the readings are not duplicated.
    again = runner.invoke(app, ["dlq", "replay", "--reason", "unknown_device"])
    assert again.exit_code == 0
    assert "replayed 0" in again.output


def test_replay_needs_a_choice(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["dlq", "replay"])
    assert result.exit_code != 0


def test_replaying_an_id_that_names_no_dead_letter_says_so(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["dlq", "replay", "--id", "987654321"])
    assert result.exit_code == 1
    assert "no dead letter with id 987654321" in result.output
    assert "replayed" not in result.output
