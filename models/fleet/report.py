"""The simulated-fleet section of ``fleetcare models report``: per-mode alert quality, the
lead-time histogram and the mode each failure's first alert named."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from models.fleet.alerts import ModeConfusion
from models.fleet.benchmark import SimBenchmarkResult, markdown_table, pooled
from models.plots import count_heatmap, save


def _fleet_line(result: SimBenchmarkResult) -> str:
    config = result.config
    model = config.get("model")
    horizon = model.get("horizon_days") if isinstance(model, dict) else None
    train = (
        config.get("train_devices") or config.get("devices"),
        config.get("train_days") or config.get("days"),
        config.get("train_seed"),
    )
    test = (config.get("devices"), config.get("days"), config.get("test_seed"))
    return (
        "Trained on {} devices x {} days (seed {}), judged on another fleet of {} devices x "
        "{} days (seed {}), scored through onnxruntime at the end of every day; an alert is "
        "a day whose probability of a mode failing within {} days reaches the mode's "
        "threshold.".format(*train, *test, horizon if horizon is not None else "H")
    )


def _lead_time_plot(result: SimBenchmarkResult, out: Path) -> Path:
    figure, axes = plt.subplots(
        1, len(result.types), figsize=(5.5 * len(result.types), 4.5), squeeze=False
    )
    for axis, kind in zip(axes[0], result.types, strict=True):
        leads = {q.mode: q.lead_days for q in kind.modes if q.lead_days}
        top = max((max(v) for v in leads.values()), default=1.0)
        bins = np.arange(0.0, np.ceil(top) + 1.0, 1.0)
        if leads:
            axis.hist(list(leads.values()), bins=bins, stacked=True, label=list(leads))
            axis.legend(fontsize=8)
        axis.set(
            xlabel="days from the first correct alert to the failure",
            ylabel="failures",
            title=kind.machine_type,
        )
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    return save(figure, out / "sim_lead_time.png")


def _confusion_plot(machine_type: str, confusion: ModeConfusion, out: Path) -> Path:
    figure = count_heatmap(
        confusion.counts,
        confusion.true_modes,
        confusion.alerted_modes,
        xlabel="mode named by the first alert",
        ylabel="mode that failed",
        title=f"{machine_type}: failure mode",
        size=(1.3 * len(confusion.alerted_modes) + 3, 0.6 * len(confusion.true_modes) + 2),
    )
    return save(figure, out / f"sim_mode_confusion_{machine_type}.png")


def sim_section(result: SimBenchmarkResult, out: Path) -> list[str]:
    """Markdown lines (and the PNGs they show, written into ``out``)."""
    if not result.types:
        return ["## Simulated fleet", "", "The result holds no machine type.", ""]
    p = pooled(result)
    lines = [
        "## Simulated fleet",
        "",
        _fleet_line(result),
        "",
        f"Wear failures with a model: precision {p['precision']:.3f}, recall "
        f"{p['recall']:.3f}, median lead {p['median_lead_days']:.1f} days over "
        f"{p['failures']:.0f} failures.",
        "",
        markdown_table(result),
        "",
        f"![lead time]({_lead_time_plot(result, out).name})",
        "",
    ]
    for kind in result.types:
        if kind.confusion is None:  # a result written before the confusion existed
            continue
        right, alerted = kind.confusion.named_right()
        lines += [
            f"{kind.machine_type}: the first alert before a wear failure named the mode "
            f"that failed for {right} of the {alerted} wear failures alerted in time"
            + (
                f"; for {kind.confusion.runner_up} of the other {alerted - right}, the mode "
                "that failed was the second most probable."
                if kind.confusion.runner_up is not None
                else "."
            ),
            "",
            f"![{kind.machine_type} mode confusion]"
            f"({_confusion_plot(kind.machine_type, kind.confusion, out).name})",
            "",
        ]
    return lines
