"""``fleetcare care``: run, report, tune (suggest, apply only on request), rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from backend.care.lifecycle import record_outcome, transition_ticket
from fleetcare.cli.app import build_app
from tests.care.conftest import add_prediction, scalar, seed_fleet

pytestmark = pytest.mark.services


def _invoke(url: str, *args: str) -> Any:
    env = {"FLEETCARE_DATABASE_URL": url, "FLEETCARE_CARE_STORM_SITE_DEVICES": "50"}
    return CliRunner().invoke(build_app(), ["care", *args], env=env)


def test_rules_validate_reports_errors_without_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n    definition: {kind: fleet_risk, min_devices: 0}\n")
    result = CliRunner().invoke(build_app(), ["care", "rules", "validate", str(bad)])
    assert result.exit_code == 2
    assert "min_devices: Input should be greater than or equal to 1" in result.output
    shipped = Path(__file__).parents[2] / "backend" / "care" / "default_rules.yaml"
    ok = CliRunner().invoke(build_app(), ["care", "rules", "validate", str(shipped)])
    assert ok.exit_code == 0 and "6 valid rules" in ok.output


def test_run_once_then_report_and_tune(care_db: str, conn: psycopg.Connection[Any]) -> None:
    fleet = seed_fleet(conn, devices_per_site=6)
    conn.execute("DELETE FROM care_rules")  # `care run` loads the shipped rules itself
    conn.commit()
    devices = fleet.devices[fleet.site_ids[0]]
    risks = (0.72, 0.75, 0.8, 0.85, 0.9, 0.95)
    for device, risk in zip(devices, risks, strict=True):
        add_prediction(conn, device, risk=risk)

    result = _invoke(care_db, "run", "--once")
    assert result.exit_code == 0, result.output
    assert "ticket_opened 6" in result.output
    assert scalar(conn, "SELECT count(*) FROM care_rules") == 6

    outcomes = (
        "no_fault_found",
        "no_fault_found",
        "failure_confirmed",
        "failure_confirmed",
        "failure_prevented",
        "failure_confirmed",
    )
    for device, outcome in zip(devices, outcomes, strict=True):
        ticket = scalar(conn, "SELECT id FROM tickets WHERE device_id = %s", device)
        transition_ticket(conn, ticket, "assigned", actor="t", team="north-mech")
        transition_ticket(conn, ticket, "in_progress", actor="t")
        record_outcome(conn, ticket, outcome, actor="t")
    conn.commit()

    report = _invoke(care_db, "report", "--json", "--days", "3650")
    assert report.exit_code == 0, report.output
    assert '"precision": 0.6667' in report.output

    tune = _invoke(care_db, "tune", "--target-precision", "0.8")
    assert tune.exit_code == 0, tune.output
    assert "raise the threshold from 0.70 to 0.75" in tune.output
    assert "not applied" in tune.output
    assert scalar(conn, "SELECT max(version) FROM care_rules WHERE name = 'failure-risk'") == 1
    applied = _invoke(care_db, "tune", "--target-precision", "0.8", "--apply")
    assert "applied: failure-risk version 2" in applied.output
    listed = _invoke(care_db, "rules", "list")
    assert "failure-risk" in listed.output
