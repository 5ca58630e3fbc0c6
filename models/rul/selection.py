"""Choosing the benchmark's hyper-parameters without looking at the official test set.

A fixed share of the *training* units is held out. Each held-out unit is cut at a few
points, as the official test units are cut: the history up to the cut is the input and
the cycles left after it are the true (uncapped) RUL. A candidate configuration is
trained on the remaining training units with the benchmark's own code and scored on
those cuts with the benchmark's metrics. The official test set is never read.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.datasets.cmapss import CmapssSubset, Trajectory
from models.rul.cmapss_protocol import SeedResult, prepare, run_seed
from models.rul.training import TrainConfig

#: The selection split is the same for every candidate and every benchmark seed.
SELECTION_SEED = 20_260_101


def _cut(unit: Trajectory, keep: int) -> Trajectory:
    return Trajectory(
        unit=unit.unit,
        cycles=unit.cycles[:keep],
        settings=unit.settings[:keep],
        sensors=unit.sensors[:keep],
    )


def holdout_subset(
    subset: CmapssSubset,
    holdout_fraction: float = 0.2,
    cuts_per_unit: int = 8,
    min_history: int = 31,
    max_rul: int = 150,
    seed: int = SELECTION_SEED,
) -> CmapssSubset:
    """A stand-in for ``subset`` made of its training units only.

    ``holdout_fraction`` of the training units (drawn with ``seed``) become pseudo test
    units: each is cut ``cuts_per_unit`` times, the RUL after a cut drawn uniformly in
    ``[1, max_rul]`` while leaving at least ``min_history`` cycles before it (the
    shortest official FD001 test unit has 31). The rest are the training units.

    Raises:
        ValueError: fewer than two training units, or none long enough to cut.
    """
    n_units = len(subset.train)
    if n_units < 2:
        raise ValueError("holding units out needs at least two training units")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_units)
    n_held = min(n_units - 1, max(1, round(holdout_fraction * n_units)))
    held = sorted(order[:n_held].tolist())
    kept = sorted(order[n_held:].tolist())
    cuts: list[Trajectory] = []
    true_rul: list[float] = []
    for index in held:
        unit = subset.train[index]
        longest = min(max_rul, len(unit) - min(min_history, len(unit) - 1))
        if longest < 1:
            continue
        for rul in rng.integers(1, longest + 1, size=cuts_per_unit):
            cuts.append(_cut(unit, len(unit) - int(rul)))
            true_rul.append(float(rul))
    if not cuts:
        raise ValueError("no held-out training unit is long enough to cut")
    return CmapssSubset(
        name=f"{subset.name}-holdout",
        train=tuple(subset.train[i] for i in kept),
        test=tuple(cuts),
        test_rul=np.asarray(true_rul, dtype=np.float64),
        sha256=subset.sha256,
    )


def validate(subset: CmapssSubset, config: TrainConfig, seed: int = 0) -> SeedResult:
    """Train ``config`` on the kept training units and score it on the held-out cuts."""
    stand_in = holdout_subset(subset)
    return run_seed(prepare(stand_in), replace(config, seed=seed))
