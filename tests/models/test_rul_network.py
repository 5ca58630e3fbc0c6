"""The RUL ensembles' variants: a GRU after the convolutions, cross-fitted early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.export import check_parity, export_sequence_onnx, parity_error  # noqa: E402
from models.rul.cmapss_protocol import PreparedSubset  # noqa: E402
from models.rul.network import RulNet  # noqa: E402
from models.rul.training import TrainConfig, TrainedEnsemble, train_ensemble  # noqa: E402
from tests.models.ensemble_checks import assert_merged_graph_matches_members  # noqa: E402

TINY = TrainConfig(
    window=20, epochs=2, ensemble=3, width=16, batch_size=128, threads=1, age_scale=100.0,
    min_history=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def recurrent(prepared: PreparedSubset) -> TrainedEnsemble:
    config = TrainConfig(**{**TINY.__dict__, "recurrent": 8, "calibrate": True})
    return train_ensemble(prepared.train, config)


def test_the_gru_state_joins_the_pooled_features() -> None:
    torch.manual_seed(0)
    net = RulNet(5, width=8, recurrent=4).eval()
    assert net.trunk_linear().in_features == 2 * 8 + 4
    x = torch.randn(3, 20, 5)
    with torch.inference_mode():
        before = net(x)[0]
        assert net.gru is not None
        for parameter in net.gru.parameters():  # only the recurrent path changes
            parameter.add_(0.5)
        assert not torch.allclose(before, net(x)[0])


def test_merged_graph_with_grus_computes_what_the_members_compute(
    recurrent: TrainedEnsemble,
) -> None:
    assert all(m.gru is not None for m in recurrent.members)
    members = assert_merged_graph_matches_members(recurrent, atol=1e-4)
    assert float(members[0].std()) > 0


def test_the_recurrent_ensemble_exports_with_parity(
    recurrent: TrainedEnsemble, tmp_path: Path
) -> None:
    import onnx

    path = tmp_path / "model.onnx"
    export_sequence_onnx(recurrent, path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("GRU") == 3  # one per member, each on its own slice of features
    assert check_parity(recurrent, path) <= 1e-4
    for batch in (1, 300):  # dynamic batch axis
        assert parity_error(recurrent, path, batch=batch) <= 1e-4


def test_the_gru_export_is_quiet_but_other_tracer_warnings_stay_visible(
    recurrent: TrainedEnsemble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from torch.jit._trace import TracerWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", TracerWarning)
        export_sequence_onnx(recurrent, tmp_path / "quiet.onnx")  # nn.GRU's own shape checks

    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            pooled = x.mean(dim=1)
            if pooled.sum() > 0:  # data-dependent control flow: the trace fixes one branch
                pooled = pooled * 2
            return pooled.mean(dim=1), pooled.mean(dim=1), pooled[:, :1]

    monkeypatch.setattr(TrainedEnsemble, "export_module", lambda self, *a, **k: Branchy())
    with pytest.warns(TracerWarning, match="Converting a tensor to a Python boolean"):
        export_sequence_onnx(recurrent, tmp_path / "branchy.onnx")


def test_cross_fitted_members_hold_out_disjoint_folds_covering_every_unit(
    prepared: PreparedSubset,
) -> None:
    config = TrainConfig(**{**TINY.__dict__, "epochs": 1, "cross_fit": True, "calibrate": True})
    ensemble = train_ensemble(prepared.train, config)
    n_units = len(prepared.train.sequences)
    held = [unit for units in ensemble.held_out for unit in units]
    assert sorted(held) == list(range(n_units))  # each unit held out by exactly one member
    assert [len(units) for units in ensemble.held_out] == [4, 4, 4]  # 12 units, 3 folds
    assert ensemble.calibration is not None
    expected_rows = sum(len(range(1, min(150, len(s) - 31) + 1)) for s in prepared.train.sequences)
    assert ensemble.calibration.rows == expected_rows


def test_without_cross_fitting_the_split_is_drawn_per_member(prepared: PreparedSubset) -> None:
    ensemble = train_ensemble(prepared.train, TrainConfig(**{**TINY.__dict__, "epochs": 1}))
    assert [len(units) for units in ensemble.held_out] == [1, 1, 1]  # 10 % of 12 units
    np.testing.assert_array_less(-1, np.concatenate(ensemble.held_out))
