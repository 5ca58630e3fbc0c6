"""Figures of the models report: one way to write them, to draw a precision-recall curve
and to draw a count matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_curve


def save(figure: Figure, path: Path) -> Path:
    """Lay out, write as PNG and close ``figure``; returns ``path``."""
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def precision_recall(label: ArrayLike, score: ArrayLike, title: str) -> Figure:
    """The precision-recall curve of ``score`` against the binary ``label``."""
    precision, recall, _ = precision_recall_curve(label, score)
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.plot(recall, precision)
    axis.set(xlabel="recall", ylabel="precision", title=title)
    return figure


def count_heatmap(
    counts: ArrayLike,
    rows: Sequence[str],
    columns: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    size: tuple[float, float] = (6.0, 5.0),
) -> Figure:
    """A matrix of counts, shaded on a log scale, each cell labelled (white on dark)."""
    matrix = np.asarray(counts)
    figure, axis = plt.subplots(figsize=size)
    axis.imshow(np.log1p(matrix), cmap="Blues", aspect="auto")
    dark = np.log1p(matrix.max()) / 2 if matrix.size else 0.0
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if np.log1p(value) > dark else "black"
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8, color=colour)
    axis.set_xticks(range(len(columns)), list(columns), rotation=30)
    axis.set_yticks(range(len(rows)), list(rows))
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return figure
