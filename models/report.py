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


def _rul_plot(result: dict[str, Any], out: Path) -> Path:
    true = np.asarray(result["true"])
    predicted = np.asarray(result["predicted"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].scatter(true, predicted[0], s=12, label="seed 0")
    top = max(true.max(), predicted.max()) + 5
    axes[0].plot([0, top], [0, top], color="grey", linewidth=1)
    axes[0].set(
        xlabel="true RUL (cycles)",
        ylabel="predicted RUL (cycles)",
        title=f"{result['subset']}: one prediction per test unit",
    )
    order = np.argsort(true)
    axes[1].plot(true[order], color="black", label="true")
    axes[1].plot(predicted.mean(axis=0)[order], color="tab:blue", label="mean over seeds")
    axes[1].set(xlabel="test unit (sorted by true RUL)", ylabel="RUL (cycles)")
    axes[1].legend()
    figure.tight_layout()
    path = out / "rul_predicted_vs_true.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _alert_plots(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Precision-recall of the "fails within the horizon" risk and the lead-time histogram."""
    alerts = result["alerts"]
    subset, horizon = result["subset"], alerts["horizon"]
    precision, recall, _ = precision_recall_curve(alerts["label"], alerts["risk"])
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.plot(recall, precision)
    axis.set(
        xlabel="recall",
        ylabel="precision",
        title=f"{subset}: fails within {horizon:.0f} cycles (every test cycle)",
    )
    figure.tight_layout()
    pr_path = out / "cmapss_precision_recall.png"
    figure.savefig(pr_path, dpi=110)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.hist(alerts["lead_times"], bins=[float(b) for b in np.arange(0, horizon + 2, 2)])
    axis.set(
        xlabel="cycles from the first correct alert to the failure",
        ylabel="test units",
        title=f"{subset}: lead time (risk >= {alerts['threshold']})",
    )
    figure.tight_layout()
    lead_path = out / "cmapss_lead_time.png"
    figure.savefig(lead_path, dpi=110)
    plt.close(figure)
    return pr_path, lead_path


def _alert_lines(result: dict[str, Any], out: Path) -> list[str]:
    alerts = result.get("alerts") or {}
    if len(set(alerts.get("label", []))) < 2:  # older results, or no unit near failure
        return []
    pr_path, lead_path = _alert_plots(result, out)
    label = np.asarray(alerts["label"])
    alerted = np.asarray(alerts["risk"]) >= alerts["threshold"]
    hits = int((alerted & (label == 1)).sum())
    precision = hits / max(1, int(alerted.sum()))
    recall = hits / max(1, int(label.sum()))
    lead = np.asarray(alerts["lead_times"])
    median = f"{np.median(lead):.0f}" if lead.size else "n/a"
    return [
        f"Risk of failing within {alerts['horizon']:.0f} cycles, scored at every cycle of "
        f"every test unit (failure = last cycle + true RUL), first seed: precision "
        f"{precision:.2f}, recall {recall:.2f} at risk >= {alerts['threshold']}; "
        f"{alerts['units_alerted']} of {alerts['units_in_horizon']} units whose observed "
        f"cycles reach the horizon were alerted, median lead time {median} cycles.",
        "",
        f"![precision-recall, C-MAPSS]({pr_path.name})",
        "",
        f"![lead time]({lead_path.name})",
        "",
    ]


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
        result = _read_result(cmapss_json, "benchmark cmapss", keys)
        s = result["summary"]
        plot = _rul_plot(result, out)
        lines += [
            f"## C-MAPSS {result['subset']}",
            "",
            f"RMSE {s['rmse_mean']:.2f} ± {s['rmse_std']:.2f}, PHM08 score "
            f"{s['score_mean']:.0f} ± {s['score_std']:.0f} over seeds {result['seeds']}.",
            "",
            "| seed | RMSE | score |",
            "|---:|---:|---:|",
            *[
                f"| {seed} | {r:.2f} | {sc:.0f} |"
                for seed, r, sc in zip(
                    result["seeds"], result["rmse"], result["score"], strict=True
                )
            ],
            "",
            f"![predicted vs true RUL]({plot.name})",
            "",
            *_alert_lines(result, out),
        ]
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
