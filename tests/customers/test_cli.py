"""``fleetcare accounts``: import, quality, review, health, show, export and erase."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from fleetcare.cli.app import build_app

pytestmark = pytest.mark.services


def test_accounts_commands_end_to_end(
    fresh_database_url: str, sim_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", fresh_database_url)
    app, runner = build_app(), CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0

    def run(*args: str) -> str:
        result = runner.invoke(app, ["accounts", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    exports = sim_dir / "exports"
    out = run("import", str(exports / "crm_accounts.json"), "--source", "crm")
    assert "162 of 162 rows imported" in out and "12 matched to existing" in out
    run("import", str(exports / "erp_customers.csv"), "--source", "erp")
    bad = tmp_path / "service.csv"
    bad.write_text("org_id,org_name\nORG-1,\nORG-2,Quillon\n", encoding="utf-8")
    refused = runner.invoke(app, ["accounts", "import", str(bad), "--source", "service"])
    assert refused.exit_code == 3 and "row 2: missing name" in refused.stdout
    quality = json.loads(run("quality", "--json"))
    assert quality["duplicates_by_source"]["crm"] == 12 and quality["conflicts_by_field"]
    assert "waiting for review" in run("quality")
    run("review", "list")
    with psycopg.connect(fresh_database_url) as conn:
        account, accounts = conn.execute("SELECT min(id), count(*) FROM accounts").fetchone()
    assert f"scored {accounts} account(s)" in run("health", "--at", "2025-10-01")
    assert "scored 0 account(s)" in run("health", "--since", "2999-01-01", "--at", "2025-10-02")
    view = json.loads(run("show", str(account)))
    assert view["account"]["id"] == account and view["health"]
    target = tmp_path / "export.json"
    run("export", str(account), "--out", str(target))
    name = json.loads(target.read_text())["account"]["name"]
    assert "erased:" in run("erase", str(account), "--yes", "--actor", "dpo")
    assert name not in run("show", str(account))
    again = runner.invoke(app, ["accounts", "erase", str(account), "--yes"])
    assert again.exit_code == 1 and "already erased" in again.output
    missing = runner.invoke(app, ["accounts", "show", "999999"])
    assert missing.exit_code == 1 and "not found" in missing.output
