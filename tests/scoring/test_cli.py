"""``fleetcare score --once`` through the root command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.storage.migrator import apply_migrations
from fleetcare.cli.app import build_app
from models.registry import FileRegistry, ModelEntry

pytestmark = pytest.mark.services


def test_score_once_reports_each_champion_and_writes_metrics(
    fresh_database_url: str,
    fleet_registry: tuple[FileRegistry, ModelEntry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply_migrations(fresh_database_url, dialect="postgres")
    registry, champion = fleet_registry
    metrics_file = tmp_path / "scoring.prom"
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("FLEETCARE_SCORING_REGISTRY_DIR", str(registry.root))
    monkeypatch.setenv("FLEETCARE_SCORING_METRICS_FILE", str(metrics_file))
    result = CliRunner().invoke(build_app(), ["score", "--once"])
    assert result.exit_code == 0, result.output
    assert f"{champion.name} {champion.version} (centrifugal_pump): 0 scored" in result.output
    assert "0 device(s) scored" in result.output
    text = metrics_file.read_text(encoding="utf-8")
    assert "fleetcare_scoring_passes_total 1" in text
    assert "# TYPE fleetcare_scoring_batch_seconds histogram" in text


def test_score_without_a_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETCARE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(build_app(), ["score", "--once"])
    assert result.exit_code != 0
    assert "FLEETCARE_DATABASE_URL" in result.output


def test_an_unreachable_database_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", f"postgresql://nobody@127.0.0.1:{port}/x")
    result = CliRunner().invoke(build_app(), ["score", "--once"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"database unreachable at postgresql://nobody@127.0.0.1:{port}/x" in text
    assert "hint: check that PostgreSQL runs" in text
    assert "Traceback" not in text and "OperationalError" not in text
