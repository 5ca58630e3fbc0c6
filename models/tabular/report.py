"""The AI4I 2020 section of ``fleetcare models report``: cross-validated figures per feature
set, failures alerted per mode, the precision-recall curve and the per-mode confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.plots import count_heatmap, precision_recall, save


def _pr_plot(result: dict[str, Any], out: Path) -> Path:
    figure = precision_recall(
        result["label"], result["oof_probability"], "AI4I machine failure (out of fold)"
    )
    return save(figure, out / "ai4i_precision_recall.png")


def _confusion_plot(result: dict[str, Any], out: Path) -> Path:
    labels = result["mode_confusion"]["labels"]
    figure = count_heatmap(
        result["mode_confusion"]["matrix"],
        labels,
        labels,
        xlabel="predicted mode",
        ylabel="true mode",
        title="AI4I failure mode (out of fold)",
    )
    return save(figure, out / "ai4i_mode_confusion.png")


def ai4i_section(result: dict[str, Any], out: Path) -> list[str]:
    """Markdown lines (and the PNGs they show, written into ``out``)."""
    lines = ["## AI4I 2020", "", "| features | ROC AUC | PR AUC | F1 |", "|---|---|---|---|"]
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
    return lines
