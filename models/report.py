"""``fleetcare models report``: Markdown with PNG plots from benchmark results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from pydantic import ValidationError
from sklearn.metrics import precision_recall_curve

from models.errors import DataSetError
from models.rul.report import cmapss_section


def _read_result(path: Path, command: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The JSON a ``benchmark`` command wrote, or a :class:`DataSetError` saying why not."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataSetError(str(path), f"cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSetError(str(path), f"not JSON ({exc})") from None
    missing = [k for k in keys if not isinstance(result, dict) or k not in result]
    if missing:
        raise DataSetError(str(path), f"not a `{command}` result (no {', '.join(missing)})")
    return result  # type: ignore[no-any-return]


def _pr_plot(result: dict[str, Any], out: Path) -> Path:
    precision, recall, _ = precision_recall_curve(result["label"], result["oof_probability"])
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.plot(recall, precision)
    axis.set(xlabel="recall", ylabel="precision", title="AI4I machine failure (out of fold)")
    figure.tight_layout()
    path = out / "ai4i_precision_recall.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _confusion_plot(result: dict[str, Any], out: Path) -> Path:
    labels = result["mode_confusion"]["labels"]
    matrix = np.asarray(result["mode_confusion"]["matrix"])
    figure, axis = plt.subplots(figsize=(6, 5))
    axis.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set(xlabel="predicted mode", ylabel="true mode", title="AI4I failure mode (out of fold)")
    figure.tight_layout()
    path = out / "ai4i_mode_confusion.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(
    out: Path,
    cmapss_json: Path | None,
    ai4i_json: Path | None,
    sim_json: Path | None = None,
) -> Path:
    """Write ``report.md`` and its plots into ``out``; sections only for the results given."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# fleetcare models report", ""]
    if cmapss_json is not None:
        keys = ("subset", "summary", "seeds", "rmse", "score", "true", "predicted")
        lines += cmapss_section(_read_result(cmapss_json, "benchmark cmapss", keys), out)
    if ai4i_json is not None:
        result = _read_result(
            ai4i_json, "benchmark ai4i", ("results", "label", "oof_probability", "mode_confusion")
        )
        lines += ["## AI4I 2020", "", "| features | ROC AUC | PR AUC | F1 |", "|---|---|---|---|"]
        for key, value in result["results"].items():
            s = value["summary"]
            lines.append(
                f"| {key} | {s['roc_auc_mean']:.4f} ± {s['roc_auc_std']:.4f} | "
                f"{s['pr_auc_mean']:.4f} ± {s['pr_auc_std']:.4f} | "
                f"{s['f1_mean']:.4f} ± {s['f1_std']:.4f} |"
            )
        recall = result["results"]["physical"]["recall_per_mode"]
        lines += [
            "",
            "Failures alerted per mode (physical features): "
            + ", ".join(f"{m} {a}/{n}" for m, (a, n) in recall.items()),
            "",
        ]
        lines += [
            f"![precision-recall]({_pr_plot(result, out).name})",
            "",
            f"![per-mode confusion]({_confusion_plot(result, out).name})",
            "",
        ]
    if sim_json is not None:
        from models.fleet.benchmark import SimBenchmarkResult
        from models.fleet.report import sim_section

        raw = _read_result(sim_json, "benchmark sim", ("config", "types"))
        try:
            sim = SimBenchmarkResult.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataSetError(
                str(sim_json), f"not a `benchmark sim` result ({where}: {first['msg']})"
            ) from None
        lines += sim_section(sim, out)
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
