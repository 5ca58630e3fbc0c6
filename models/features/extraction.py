"""tsfresh features over windows: a small candidate set for selection, and extraction of
exactly the selected columns at serving time (``settings.from_columns``).

Feature names follow tsfresh's contract ``{signal}__{calculator}__{param}_{value}``.
Missing readings (NaN) are dropped before extraction, never read as zeros; a feature
that cannot be computed for lack of readings is NaN and filled by the caller.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from numpy.typing import NDArray
from tsfresh import extract_features, select_features
from tsfresh.feature_extraction.settings import from_columns

log = logging.getLogger(__name__)

#: Calculators tried during selection (kept small: trained on two shared CPU cores).
CANDIDATES: Final[dict[str, list[dict[str, Any]] | None]] = {
    "mean": None,
    "median": None,
    "standard_deviation": None,
    "minimum": None,
    "maximum": None,
    "quantile": [{"q": 0.1}, {"q": 0.9}],
    "linear_trend": [{"attr": "slope"}, {"attr": "intercept"}, {"attr": "rvalue"}],
    "agg_linear_trend": [{"attr": "slope", "chunk_len": 5, "f_agg": "mean"}],
    "mean_change": None,
    "cid_ce": [{"normalize": False}],
    "autocorrelation": [{"lag": 1}],
}


def to_long(windows: Sequence[NDArray[np.float64]], signals: Sequence[str]) -> pd.DataFrame:
    """Windows ``(length, n_signals)`` to tsfresh's long format, missing readings dropped."""
    frames = []
    for index, window in enumerate(windows):
        steps, n = window.shape
        frames.append(
            pd.DataFrame(
                {
                    "id": np.full(steps * n, index),
                    "time": np.repeat(np.arange(steps), n),
                    "kind": np.tile(np.asarray(signals, dtype=object), steps),
                    "value": window.reshape(-1),
                }
            )
        )
    long = pd.concat(frames, ignore_index=True)
    return long[np.isfinite(long["value"].to_numpy(dtype=np.float64))]


def _extract(
    windows: Sequence[NDArray[np.float64]],
    signals: Sequence[str],
    kind_to_parameters: dict[str, dict[str, Any]],
) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        features = extract_features(
            to_long(windows, signals),
            column_id="id",
            column_sort="time",
            column_kind="kind",
            column_value="value",
            kind_to_fc_parameters=kind_to_parameters,
            disable_progressbar=True,
            n_jobs=0,
        )
    return features.reindex(range(len(windows)))


def extract_candidates(
    windows: Sequence[NDArray[np.float64]], signals: Sequence[str]
) -> pd.DataFrame:
    """Every candidate feature of every signal, one row per window."""
    return _extract(windows, signals, {signal: dict(CANDIDATES) for signal in signals})


def select_relevant(
    candidates: pd.DataFrame, target: NDArray[np.float64], fdr: float = 0.05
) -> list[str]:
    """tsfresh's selection (univariate tests with Benjamini-Yekutieli FDR control).

    Constant or incomplete candidates are dropped first.
    """
    usable = candidates.loc[:, candidates.notna().all() & (candidates.std() > 1e-12)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        chosen = select_features(usable, pd.Series(target, index=usable.index), fdr_level=fdr)
    return [str(name) for name in chosen.columns]


def extract_selected(
    windows: Sequence[NDArray[np.float64]], signals: Sequence[str], columns: Sequence[str]
) -> NDArray[np.float64]:
    """Compute exactly ``columns`` (rebuilt with ``from_columns``), in that order."""
    features = _extract(windows, signals, from_columns(list(columns)))
    out: NDArray[np.float64] = features.reindex(columns=list(columns)).to_numpy(dtype=np.float64)
    return out
