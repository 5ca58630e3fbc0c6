"""Bad input to ``fleetcare sim``: one clear line naming the option, exit 2 (usage) or 1
(refused by the SDK), never a traceback, and nothing published."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware_sim.cli import app
from tests.cli_output import said


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, said(result.output)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--duration", "banana"], "Invalid value for --duration: cannot read duration 'banana'"),
        (["--start", "2025-13-01"], "Invalid value for --start: '2025-13-01' is not a day"),
        (["--faults", "{missing}"], "Invalid value for --faults: cannot read"),
        (["--faults", "{not_json}"], "is not a fault plan: (whole input): Invalid JSON"),
        (["--faults", "{wrong_type}"], "is not a fault plan: malformed: Input should be"),
    ],
)
def test_run_names_the_bad_option(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "not.json").write_text("nope")
    (tmp_path / "wrong.json").write_text('{"malformed": "many"}')
    files = {
        "{missing}": str(tmp_path / "absent.json"),
        "{not_json}": str(tmp_path / "not.json"),
        "{wrong_type}": str(tmp_path / "wrong.json"),
    }
    args = [files.get(a, a) for a in args]
    code, output = _invoke("run", "--queue-dir", str(tmp_path / "q"), *args)
    assert code == 2
    assert says in output
    assert not (tmp_path / "q").exists()


def test_a_broker_url_the_sdk_refuses_is_an_error_line(tmp_path: Path) -> None:
    code, output = _invoke(
        "run", "--broker", "http://127.0.0.1:1883", "--duration", "1m",
        "--queue-dir", str(tmp_path / "q"), "--truth-dir", str(tmp_path / "truth"),
    )  # fmt: skip
    assert code == 1
    assert "error: invalid device_sdk configuration" in output
    assert "scheme must be mqtt:// or mqtts://" in output


def test_generate_names_a_bad_start_day(tmp_path: Path) -> None:
    code, output = _invoke("generate", "--out", str(tmp_path / "out"), "--start", "nope")
    assert code == 2
    assert "Invalid value for --start: 'nope' is not a day (YYYY-MM-DD)" in output
    assert not (tmp_path / "out").exists()
