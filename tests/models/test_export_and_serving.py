"""The sequence model end to end on small synthetic data: train, export, parity, serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.datasets.cmapss import load_subset  # noqa: E402
from models.export import check_parity, export_sequence_onnx, parity_error  # noqa: E402
from models.registry import FileRegistry  # noqa: E402
from models.rul.cmapss_protocol import prepare  # noqa: E402
from models.rul.evaluation import rmse  # noqa: E402
from models.rul.training import TrainConfig, TrainedEnsemble, train_ensemble  # noqa: E402
from models.serving import DeviceHistory, SequenceScorer  # noqa: E402
from models.train import train_rul_sequence  # noqa: E402
from tests.models.ensemble_checks import assert_merged_graph_matches_members  # noqa: E402

TINY = TrainConfig(
    window=20, epochs=2, ensemble=2, width=16, batch_size=128, threads=1, age_scale=100.0,
    min_history=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_ensemble(tmp_path_factory: pytest.TempPathFactory) -> TrainedEnsemble:
    from tests.models.conftest import write_cmapss

    folder = tmp_path_factory.mktemp("cmapss")
    prepared = prepare(load_subset(write_cmapss(folder), "FD001"))
    return train_ensemble(prepared.train, TINY)


def test_onnx_matches_torch_on_fresh_random_inputs(
    tiny_ensemble: TrainedEnsemble, tmp_path: Path
) -> None:
    path = tmp_path / "model.onnx"
    export_sequence_onnx(tiny_ensemble, path)
    assert check_parity(tiny_ensemble, path) <= 1e-4
    for batch in (1, 7, 300):  # dynamic batch axis
        assert parity_error(tiny_ensemble, path, batch=batch) <= 1e-4


def test_merged_graph_computes_what_the_members_compute(tiny_ensemble: TrainedEnsemble) -> None:
    members = assert_merged_graph_matches_members(tiny_ensemble, atol=1e-5)
    assert float(members[0].std()) > 0  # trained outputs vary from unit to unit


def test_the_ensemble_is_exported_as_one_graph(
    tiny_ensemble: TrainedEnsemble, tmp_path: Path
) -> None:
    import onnx
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    export_sequence_onnx(tiny_ensemble, path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("Conv") == 4  # three layers + attention, both members together
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimised = [node.op_type for node in onnx.load(str(tmp_path / "optimised.onnx")).graph.node]
    assert optimised.count("Transpose") <= 1 and "Slice" not in optimised


def test_training_registers_a_candidate_that_serves_like_the_benchmark(
    cmapss_dir: Path, tmp_path: Path
) -> None:
    registry = FileRegistry(tmp_path / "reg")
    entry = train_rul_sequence(cmapss_dir, "FD001", registry, TINY, name="tiny-rul")
    assert entry.status == "candidate" and entry.version == "v1"
    manifest = registry.manifest("tiny-rul", "v1")
    assert manifest.window is not None and manifest.window.length == 20
    assert manifest.metrics["onnx_parity_max_abs"] <= 1e-4
    assert manifest.feature_names[0] == "s2" and manifest.normalisation is not None
    assert len(manifest.training_data_sha256) == 64

    subset = load_subset(cmapss_dir, "FD001")
    scorer = SequenceScorer(entry.directory)
    histories = [
        DeviceHistory(values=u.select(manifest.feature_names), settings=u.settings, ages=u.cycles)
        for u in subset.test
    ]
    scores = scorer.score(histories)
    assert len(scores) == len(subset.test)
    assert all(0 <= s.risk <= 1 and s.rul >= 0 for s in scores)
    assert {s.failure_mode for s in scores} == {"hpc_degradation"}
    assert all(s.model_version == "v1" for s in scores)
    served = rmse([s.rul for s in scores], subset.test_rul)
    assert served == pytest.approx(manifest.metrics["test_rmse"], abs=1e-3)


def test_offline_readings_are_masked_at_serving_time(cmapss_dir: Path, tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    entry = train_rul_sequence(cmapss_dir, "FD001", registry, TINY, name="tiny-rul")
    scorer = SequenceScorer(entry.directory)
    unit = load_subset(cmapss_dir, "FD001").test[0]
    values = unit.select(scorer.manifest.feature_names).copy()
    values[-5:-2, :] = np.nan  # offline for three cycles
    values[-1, 0] = np.nan  # one sensor missing in the last reading
    history = DeviceHistory(values=values, settings=unit.settings, ages=unit.cycles)
    window = scorer.windows([history])[0]
    n = len(scorer.manifest.feature_names)
    assert window[-5:-2, n : 2 * n].sum() == 0 and window[-5:-2, :n].sum() == 0
    assert window[-1, n] == 0 and window[-1, n + 1] == 1
    (score,) = scorer.score([history])
    assert np.isfinite(score.rul) and 0 <= score.risk <= 1


def test_serving_does_not_import_torch() -> None:
    code = "import sys, models.serving, models.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_running_in_slices_gives_the_same_outputs_in_order(
    cmapss_dir: Path, tmp_path: Path
) -> None:
    from models.serving import OnnxModel

    entry = train_rul_sequence(
        cmapss_dir, "FD001", FileRegistry(tmp_path / "reg"), TINY, name="tiny-rul"
    )
    model = OnnxModel(entry.directory)
    _, length, channels = model.session.get_inputs()[0].shape
    inputs = np.random.default_rng(3).normal(size=(150, length, channels)).astype(np.float32)
    whole = model.run(inputs)
    assert whole["rul"].shape == (150,) and float(whole["rul"].std()) > 0
    for rows in (1, 7, 64, 150, 1000):
        sliced = model.run(inputs, rows_per_call=rows)
        for name, values in whole.items():
            np.testing.assert_allclose(sliced[name], values, atol=1e-5)
    assert model.run(inputs[:0], rows_per_call=64)["rul"].shape == (0,)
    with pytest.raises(ValueError, match="rows_per_call"):
        model.run(inputs, rows_per_call=0)
