"""The C-MAPSS and AI4I sections of the models report, on results written by hand."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from models.cli import app
from models.rul.report import error_by_true_rul

runner = CliRunner()


def test_error_by_true_rul_uses_the_mean_prediction_over_seeds() -> None:
    true = [0.0, 20.0, 60.0, 130.0]
    predicted = [[2.0, 20.0, 70.0, 110.0], [4.0, 30.0, 70.0, 100.0]]
    # mean errors: +3, +5, +10, -25; squared 9, 25, 100, 625 (total 759)
    rows = error_by_true_rul(true, predicted)
    assert rows[2] == "| [0, 25] | 2 | +4.0 | 4.1 | 4% |"
    assert rows[3] == "| (50, 75] | 1 | +10.0 | 10.0 | 13% |"
    assert rows[4] == "| > 125 | 1 | -25.0 | 25.0 | 82% |"
    assert len(rows) == 5  # empty bands are left out


def _report(tmp_path: Path, option: str, result: dict[str, object]) -> tuple[Path, str]:
    """``fleetcare models report OPTION FILE`` on ``result``: the folder and report.md."""
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    out = tmp_path / "report"
    done = runner.invoke(app, ["report", "--out", str(out), option, str(path)])
    assert done.exit_code == 0, done.output
    return out, (out / "report.md").read_text()


def _result() -> dict[str, object]:
    return {
        "subset": "FD001",
        "seeds": [0, 1],
        "rmse": [12.0, 13.0],
        "score": [200.0, 240.0],
        "rmse_tail": [11.9, 12.8],
        "score_tail": [198.0, 236.0],
        "rmse_uncalibrated": [],
        "score_uncalibrated": [],
        "true": [10.0, 80.0, 140.0],
        "predicted": [[12.0, 85.0, 120.0], [8.0, 90.0, 118.0]],
        "summary": {"rmse_mean": 12.5, "rmse_std": 0.71, "score_mean": 220.0, "score_std": 28.3},
    }


def test_report_shows_seeds_error_bands_and_the_published_figures(tmp_path: Path) -> None:
    out, text = _report(tmp_path, "--cmapss-json", _result())
    assert "| seed | RMSE | score | RMSE, tail-10 | score, tail-10 |" in text
    assert "| 1 | 13.00 | 240 | 12.80 | 236 |" in text
    assert "| **mean ± std** | 12.50 ± 0.71 | 220 ± 28 | 12.35 ± 0.64 | 217 ± 27 |" in text
    assert "no calibration" not in text  # that result had no such figures
    assert "| > 125 | 1 | -21.0 | 21.0 |" in text
    assert "| TCNN-Transformer (2021) | 11.40 | 254 |" in text
    assert "| **this run** | **12.50** | **220** |" in text
    assert (out / "rul_predicted_vs_true.png").stat().st_size > 1000


def test_report_with_an_ai4i_result(tmp_path: Path) -> None:
    summary = {"roc_auc_mean": 0.98, "roc_auc_std": 0.005, "pr_auc_mean": 0.88,
               "pr_auc_std": 0.05, "f1_mean": 0.87, "f1_std": 0.03}  # fmt: skip
    result = {
        "results": {
            "raw": {"summary": {**summary, "f1_mean": 0.76}, "recall_per_mode": {}},
            "physical": {"summary": summary, "recall_per_mode": {"HDF": [9, 10], "TWF": [1, 4]}},
        },
        "oof_probability": [0.1, 0.9, 0.2, 0.7, 0.4],
        "label": [0, 1, 0, 1, 1],
        "mode_confusion": {"labels": ["none", "HDF"], "matrix": [[5, 1], [0, 9]]},
    }
    out, text = _report(tmp_path, "--ai4i-json", result)
    assert "| raw | 0.9800 ± 0.0050 | 0.8800 ± 0.0500 | 0.7600 ± 0.0300 |" in text
    assert "Failures alerted per mode (physical features): HDF 9/10, TWF 1/4" in text
    for plot in ("ai4i_precision_recall.png", "ai4i_mode_confusion.png"):
        assert (out / plot).stat().st_size > 1000
