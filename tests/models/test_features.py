from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tsfresh")

from models.explain import signal_contributions
from models.features.extraction import (
    extract_candidates,
    extract_selected,
    select_relevant,
)


def test_selected_columns_are_rebuilt_exactly_with_from_columns() -> None:
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 100, size=60)
    windows = []
    for t in target:
        steps = np.arange(15.0)
        drift = (100 - t) / 100 * steps  # signal "a" trends with the target
        windows.append(np.column_stack([drift + rng.normal(0, 0.1, 15), rng.normal(size=15)]))
    windows[0][3, 1] = np.nan  # a gap: dropped before extraction
    candidates = extract_candidates(windows, ("a", "b"))
    chosen = select_relevant(candidates, target)
    assert chosen and all(name.startswith("a__") for name in chosen)
    again = extract_selected(windows, ("a", "b"), chosen)
    assert np.allclose(again, candidates[chosen].to_numpy(), equal_nan=True)


def test_signal_contributions_find_the_signal_that_matters() -> None:
    names = ["a__mean", "a__maximum", "b__mean"]
    features = np.array([[3.0, 1.0, 5.0], [0.0, 0.0, 9.0]], dtype=np.float32)

    def predict(x: np.ndarray) -> np.ndarray:
        return 2 * x[:, 0] + x[:, 1]

    top = signal_contributions(predict, features, names, np.zeros(3, np.float32), top=2)
    assert top[0][0].signal == "a" and top[0][0].effect == pytest.approx(7.0)
    assert top[0][1].effect == 0
