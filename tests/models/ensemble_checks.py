"""Shared check for the RUL ensembles: the merged graph computes what the members compute.

Import it after ``pytest.importorskip("torch")``: it needs torch.
"""

from __future__ import annotations

import numpy as np
import torch

from models.rul.training import TrainedEnsemble


def assert_merged_graph_matches_members(
    ensemble: TrainedEnsemble, atol: float
) -> tuple[torch.Tensor, ...]:
    """Feed the same random windows to both modules; return the members' outputs."""
    inputs = torch.from_numpy(
        np.random.default_rng(3).normal(size=(64, 20, ensemble.n_channels)).astype("f4")
    )
    with torch.inference_mode():
        members = ensemble.serving_module()(inputs)
        merged = ensemble.export_module()(inputs)
    for expected, got in zip(members, merged, strict=True):
        assert torch.allclose(expected, got, atol=atol)
    return tuple(members)
