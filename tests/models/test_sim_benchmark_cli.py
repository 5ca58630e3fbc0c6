"""``fleetcare models benchmark sim`` end to end on two small fleets, then its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.cli import app
from models.fleet.benchmark import SimBenchmarkResult

runner = CliRunner()


@pytest.mark.slow
def test_benchmark_sim_then_report(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    result = runner.invoke(
        app,
        ["benchmark", "sim", "--devices", "60", "--days", "200", "--interval-s", "3600",
         "--work", str(tmp_path / "fleets"), "--registry", str(tmp_path / "registry"),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wear failures: precision" in result.output
    saved = SimBenchmarkResult.model_validate_json(out.read_text())
    assert [t.machine_type for t in saved.types] == ["centrifugal_pump", "air_compressor"]
    for kind in saved.types:
        assert kind.confusion is not None
        by_mode = {q.mode: q for q in kind.modes}
        counts = dict(zip(kind.confusion.true_modes, kind.confusion.counts, strict=True))
        for mode, quality in by_mode.items():
            # every judged failure sits in exactly one cell of its row
            assert sum(counts.get(mode, [0])) == quality.failures
        for mode, row in counts.items():
            # a failure its own mode alerted for cannot be in the "no alert" column
            assert row[-1] <= by_mode[mode].failures - by_mode[mode].detected
        assert sum(q.detected for q in kind.modes) > 0
        right, alerted = kind.confusion.named_right()
        assert kind.confusion.runner_up is not None
        assert 0 <= kind.confusion.runner_up <= alerted - right
    report = runner.invoke(app, ["report", "--out", str(tmp_path / "rep"), "--sim-json", str(out)])
    assert report.exit_code == 0, report.output
    folder = tmp_path / "rep"
    for plot in (
        "sim_lead_time.png",
        "sim_mode_confusion_centrifugal_pump.png",
        "sim_mode_confusion_air_compressor.png",
    ):
        assert (folder / plot).stat().st_size > 1000
    text = (folder / "report.md").read_text()
    assert "## Simulated fleet" in text and "seed 2" in text
    assert "| centrifugal_pump | strainer_clog | wear |" in text
    assert "![lead time](sim_lead_time.png)" in text
    right, alerted = saved.types[0].confusion.named_right()  # type: ignore[union-attr]
    assert f"named the mode that failed for {right} of the {alerted} wear failures" in text


def _said(output: str) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(output.split())


def test_report_refuses_what_is_not_a_result_and_survives_an_empty_one(tmp_path: Path) -> None:
    wrong = tmp_path / "ai4i.json"
    wrong.write_text(json.dumps({"results": {}}))
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "r"), "--sim-json", str(wrong)])
    assert result.exit_code == 1
    assert "not a `benchmark sim` result (no config, types)" in _said(result.output)
    missing = runner.invoke(
        app, ["report", "--out", str(tmp_path / "r"), "--cmapss-json", str(tmp_path / "none")]
    )
    assert missing.exit_code == 1 and "cannot read it" in _said(missing.output)
    garbled = tmp_path / "garbled.json"
    garbled.write_text('{"config": {}, "generate_seconds": 1, "types": [{"machine_type": 3}]}')
    bad = runner.invoke(app, ["report", "--out", str(tmp_path / "r"), "--sim-json", str(garbled)])
    assert bad.exit_code == 1
    assert "not a `benchmark sim` result (types.0." in _said(bad.output)
    assert "Traceback" not in bad.output + missing.output + result.output
    saved = SimBenchmarkResult(config={}, generate_seconds=1.0, types=[]).model_dump()
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(saved))
    nothing = runner.invoke(app, ["report", "--out", str(tmp_path / "e"), "--sim-json", str(empty)])
    assert nothing.exit_code == 0, nothing.output
    assert "The result holds no machine type." in (tmp_path / "e" / "report.md").read_text()
    saved["types"] = [{"machine_type": "../../escape", "model": "m", "version": "v1",
                       "train_seconds": 1, "training_rows": 1, "failures_in_training": {},
                       "thresholds": {}, "test_device_days": 1, "modes": []}]  # fmt: skip
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(saved))
    refused = runner.invoke(
        app, ["report", "--out", str(tmp_path / "r"), "--sim-json", str(hostile)]
    )
    assert refused.exit_code == 1
    assert "types.0.machine_type: String should match pattern" in _said(refused.output)
