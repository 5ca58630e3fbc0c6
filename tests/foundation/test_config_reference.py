"""docs/configuration.md is exactly what ``fleetcare config reference`` prints."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from backend.settings import BackendSettings
from fleetcare.cli.app import build_app
from tests.foundation.conftest import settings_env_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_doc_matches_the_command_output(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["config", "reference"])
    assert result.exit_code == 0, result.output
    assert DOC.read_text() == result.stdout, (
        "docs/configuration.md is stale: run `fleetcare config reference > docs/configuration.md`"
    )


def test_every_setting_is_documented_with_its_description() -> None:
    text = DOC.read_text()
    for env_name, (name, info) in zip(
        settings_env_names(), BackendSettings.model_fields.items(), strict=True
    ):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{env_name}` "))
        assert f"`{name}`" in row
        assert info.description and info.description.split(";")[0] in row
