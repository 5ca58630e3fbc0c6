"""``fleetcare models`` commands on small synthetic data (the sub-app, without the root CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from models.cli import app
from models.datasets.cmapss import load_subset
from tests.cli_output import said

runner = CliRunner()


def test_train_list_promote_evaluate(
    cmapss_dir: Path, registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_MODEL_DIR", str(registry_dir))
    args = ["--data", str(cmapss_dir), "--subset", "FD001"]
    result = runner.invoke(app, ["train", "rul", *args, "--epochs", "1", "--ensemble", "1"])
    assert result.exit_code == 0, result.output
    assert "registered cmapss-fd001-rul v1 (candidate)" in result.output
    result = runner.invoke(app, ["train", "anomaly", *args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["promote", "cmapss-fd001-rul", "v1"])
    assert result.exit_code == 0 and "now the champion" in result.output
    listing = runner.invoke(app, ["list"])
    assert "champion" in listing.output and "cmapss-fd001-anomaly" in listing.output
    evaluated = runner.invoke(app, ["evaluate", "cmapss-fd001-rul", "--data", str(cmapss_dir)])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output.split(": ", 1)[1])["rmse"] >= 0


def test_errors_are_reported_without_traceback(registry_dir: Path) -> None:
    result = runner.invoke(app, ["promote", "nothing", "v1", "--registry", str(registry_dir)])
    assert result.exit_code == 1
    assert "no model 'nothing' in" in result.output
    assert "nothing is registered there" in " ".join(result.output.split())


def test_benchmark_cmapss_writes_its_result(cmapss_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        ["benchmark", "cmapss", "--data", str(cmapss_dir), "--subset", "FD001",
         "--seeds", "1", "--epochs", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["summary"]["rmse_mean"] > 0 and len(saved["predicted"][0]) == 12
    report = runner.invoke(
        app, ["report", "--out", str(tmp_path / "rep"), "--cmapss-json", str(out)]
    )
    assert report.exit_code == 0, report.output
    for plot in (
        "rul_predicted_vs_true.png",
        "cmapss_precision_recall.png",
        "cmapss_lead_time.png",
    ):
        assert (tmp_path / "rep" / plot).stat().st_size > 1000
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "median lead time" in text and "![lead time](cmapss_lead_time.png)" in text
    alerts = saved["alerts"]
    cycles = sum(len(u) for u in load_subset(cmapss_dir, "FD001").test)
    assert len(alerts["risk"]) == len(alerts["label"]) == cycles  # every test cycle scored
    assert alerts["units_alerted"] <= alerts["units_in_horizon"] <= 12


@pytest.mark.parametrize(
    ("subset", "conditions", "fault_modes"),
    [
        pytest.param("FD002", 6, 1, marks=pytest.mark.slow),
        ("FD004", 6, 2),
        pytest.param("FD003", 1, 2, marks=pytest.mark.slow),
    ],
)
def test_every_subset_layout_runs(
    tmp_path: Path, subset: str, conditions: int, fault_modes: int
) -> None:
    from tests.models.conftest import write_cmapss

    folder = write_cmapss(
        tmp_path, subset, units=8, conditions=conditions, fault_modes=fault_modes,
        shortest_test=19,
    )  # fmt: skip
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        ["benchmark", "cmapss", "--data", str(folder), "--subset", subset,
         "--seeds", "1", "--epochs", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    predicted = saved["predicted"][0]
    assert len(predicted) == 8 and all(0 <= p <= 125 for p in predicted)
    assert saved["config"]["window"] > 19  # the 19-cycle unit was padded, not dropped


def test_an_output_folder_that_cannot_be_made_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, ["report", "--out", str(blocker / "report")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert str(blocker) in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["benchmark", "ai4i", "--folds", "1"], "'--folds': Input should be greater than or equal to 2"),
        (["benchmark", "sim", "--devices", "1"], "'--devices': Input should be greater than or equal to 20"),
        (["benchmark", "sim", "--train-days", "5"], "'--train-days': Input should be greater than or equal to 60"),
    ],
)  # fmt: skip
def test_sizes_that_cannot_work_are_refused_before_any_work(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert says in said(result.output)
    assert list(tmp_path.iterdir()) == []
