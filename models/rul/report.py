"""The C-MAPSS section of ``fleetcare models report``: figures per seed, where the error
is by true RUL, the published figures, and the plots (predicted vs true RUL, the risk
head's precision-recall curve and lead times)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from models.plots import precision_recall, save
from models.rul.evaluation import PUBLISHED_FD001

#: Bands of true RUL (cycles) for the error table; the last one is above the target's cap.
RUL_BANDS = ((0, 25), (25, 50), (50, 75), (75, 100), (100, 125), (125, None))


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
    return save(figure, out / "rul_predicted_vs_true.png")


def _alert_plots(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Precision-recall of the "fails within the horizon" risk and the lead-time histogram."""
    alerts = result["alerts"]
    subset, horizon = result["subset"], alerts["horizon"]
    figure = precision_recall(
        alerts["label"],
        alerts["risk"],
        f"{subset}: fails within {horizon:.0f} cycles (every test cycle)",
    )
    pr_path = save(figure, out / "cmapss_precision_recall.png")
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.hist(alerts["lead_times"], bins=[float(b) for b in np.arange(0, horizon + 2, 2)])
    axis.set(
        xlabel="cycles from the first correct alert to the failure",
        ylabel="test units",
        title=f"{subset}: lead time (risk >= {alerts['threshold']})",
    )
    return pr_path, save(figure, out / "cmapss_lead_time.png")


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


def _seed_table(result: dict[str, Any]) -> list[str]:
    """One row per seed; the tail-10 and no-calibration columns when the result has them."""
    columns = [("RMSE", result["rmse"], 2), ("score", result["score"], 0)]
    seeds = len(result["seeds"])
    for label, key, digits in (
        ("RMSE, tail-10", "rmse_tail", 2),
        ("score, tail-10", "score_tail", 0),
        ("no calibration: RMSE", "rmse_uncalibrated", 2),
        ("no calibration: score", "score_uncalibrated", 0),
    ):
        values = result.get(key) or []
        if len(values) == seeds:
            columns.append((label, values, digits))
    lines = [
        "| seed | " + " | ".join(c[0] for c in columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for row, seed in enumerate(result["seeds"]):
        cells = [f"{c[1][row]:.{c[2]}f}" for c in columns]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    ddof = 1 if seeds > 1 else 0
    spread = [f"{np.mean(c[1]):.{c[2]}f} ± {np.std(c[1], ddof=ddof):.{c[2]}f}" for c in columns]
    lines.append("| **mean ± std** | " + " | ".join(spread) + " |")
    return lines


def error_by_true_rul(true: list[float], predicted: list[list[float]]) -> list[str]:
    """Markdown rows: units, bias and RMSE of the mean prediction over seeds, per band of
    true RUL (bands include their upper edge), and each band's share of the squared error."""
    truth = np.asarray(true, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64).mean(axis=0) - truth
    total = float((error**2).sum()) or 1.0
    lines = [
        "| true RUL | units | bias | RMSE | share of the squared error |",
        "|---|---:|---:|---:|---:|",
    ]
    for low, high in RUL_BANDS:
        above = truth >= low if low == 0 else truth > low
        inside = above & (truth <= high) if high is not None else above
        if not inside.any():
            continue
        e = error[inside]
        opening = "[" if low == 0 else "("
        label = f"{opening}{low}, {high}]" if high is not None else f"> {low}"
        lines.append(
            f"| {label} | {int(inside.sum())} | {e.mean():+.1f} | "
            f"{np.sqrt((e**2).mean()):.1f} | {(e**2).sum() / total:.0%} |"
        )
    return lines


def cmapss_section(result: dict[str, Any], out: Path) -> list[str]:
    """Markdown lines (and the PNGs they show, written into ``out``)."""
    s = result["summary"]
    subset = result["subset"]
    lines = [
        f"## C-MAPSS {subset}",
        "",
        f"RMSE {s['rmse_mean']:.2f} ± {s['rmse_std']:.2f}, PHM08 score "
        f"{s['score_mean']:.0f} ± {s['score_std']:.0f} over seeds {result['seeds']} "
        "(one prediction per test unit at its last cycle, true RUL not capped).",
        "",
        *_seed_table(result),
        "",
        "Where the error is: the mean prediction over the seeds, by true RUL.",
        "",
        *error_by_true_rul(result["true"], result["predicted"]),
        "",
    ]
    if subset == "FD001":
        lines += [
            "| published (FD001) | RMSE | score |",
            "|---|---:|---:|",
            *[f"| {paper} | {r:.2f} | {sc:.0f} |" for paper, (r, sc) in PUBLISHED_FD001.items()],
            f"| **this run** | **{s['rmse_mean']:.2f}** | **{s['score_mean']:.0f}** |",
            "",
        ]
    lines += [f"![predicted vs true RUL]({_rul_plot(result, out).name})", ""]
    return lines + _alert_lines(result, out)
