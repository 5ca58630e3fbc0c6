"""Export to ONNX with a manifest, and the parity check against the source model.

The sequence network is exported with torch's TorchScript-based exporter
(``dynamo=False``: the torch.export-based one needs ``onnxscript``, not installed), a
dynamic batch axis and opset 17. Parity is checked on fresh random inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Final

import numpy as np
import onnx
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from torch.jit._trace import TracerWarning

from models.datasets.hashing import file_sha256
from models.errors import ExportError
from models.manifest import Manifest, TensorSpec
from models.rul.training import TrainedEnsemble

OPSET: Final = 17
ARTIFACT: Final = "model.onnx"
PARITY_TOLERANCE: Final = 1e-4
SEQUENCE_INPUT: Final = "windows"
SEQUENCE_OUTPUTS: Final = ("rul", "risk", "mode_probabilities")


def sequence_tensors(
    ensemble: TrainedEnsemble,
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    window = ensemble.config.window
    inputs = (TensorSpec(name=SEQUENCE_INPUT, shape=("batch", window, ensemble.n_channels)),)
    outputs = (
        TensorSpec(name="rul", shape=("batch",)),
        TensorSpec(name="risk", shape=("batch",)),
        TensorSpec(name="mode_probabilities", shape=("batch", max(1, ensemble.n_modes))),
    )
    return inputs, outputs


def export_sequence_onnx(ensemble: TrainedEnsemble, path: Path) -> None:
    """Write the ensemble's serving module (mean RUL, risk, mode probabilities) to ``path``."""
    module = ensemble.export_module()
    example = torch.zeros(2, ensemble.config.window, ensemble.n_channels)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, message=".*legacy TorchScript"
        )
        # The channel padding's pads are built with a reversing Slice the exporter does
        # not fold; onnxruntime folds those constants when it loads the graph.
        warnings.filterwarnings(
            "ignore", category=UserWarning, message="Constant folding - Only steps=1"
        )
        # GRUs: the exporter warns that a batch other than the example's may fail when the
        # initial state is not an input, and its tracer that nn.GRU's shape checks
        # (input width, state size) compare traced sizes as Python booleans. The initial
        # state is zeros, built per batch; the parity tests run batches of 1, 2 and 300.
        # Only the tracer warnings raised inside torch's RNN module are silenced: the
        # others (data-dependent control flow in a future graph) stay visible.
        warnings.filterwarnings(
            "ignore", category=UserWarning, message="Exporting a model to ONNX with a batch_size"
        )
        warnings.filterwarnings("ignore", category=TracerWarning, module=r"torch\.nn\.modules\.rnn")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[SEQUENCE_INPUT],
            output_names=list(SEQUENCE_OUTPUTS),
            dynamic_axes={
                SEQUENCE_INPUT: {0: "batch"},
                **{n: {0: "batch"} for n in SEQUENCE_OUTPUTS},
            },
        )
    onnx.checker.check_model(onnx.load(str(path)))


def parity_error(
    ensemble: TrainedEnsemble, path: Path, batch: int = 64, seed: int | None = None
) -> float:
    """Largest absolute difference, onnxruntime vs torch, on fresh random inputs.

    Inputs are normal noise on the value channels and random 0/1 masks; ``seed=None``
    draws a new batch every call.
    """
    rng = np.random.default_rng(seed)
    spec = ensemble.config.window_spec
    inputs = rng.normal(size=(batch, spec.length, ensemble.n_channels)).astype(np.float32)
    n_features = (ensemble.n_channels - (1 if spec.age_scale is not None else 0)) // 2
    inputs[:, :, n_features : 2 * n_features] = rng.integers(
        0, 2, size=(batch, spec.length, n_features)
    )
    module = ensemble.export_module()
    with torch.inference_mode():
        expected = [t.numpy() for t in module(torch.from_numpy(inputs))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(SEQUENCE_OUTPUTS), {SEQUENCE_INPUT: inputs})
    return max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got, strict=True))


def check_parity(ensemble: TrainedEnsemble, path: Path) -> float:
    """Raises:
    ExportError: onnxruntime and torch differ by more than ``PARITY_TOLERANCE``.
    """
    error = parity_error(ensemble, path)
    if error > PARITY_TOLERANCE:
        raise ExportError(f"onnxruntime differs from torch by {error:.2e} > {PARITY_TOLERANCE}")
    return error


def write_onnx(proto: onnx.ModelProto, directory: Path) -> Path:
    path = directory / ARTIFACT
    onnx.save(proto, str(path))
    return path


def finalise(manifest: Manifest, directory: Path) -> Manifest:
    """Record the artifact's SHA-256 in the manifest and write it beside the artifact."""
    done = manifest.model_copy(
        update={"artifact_sha256": file_sha256(directory / manifest.artifact)}
    )
    done.write(directory)
    return done


def onnx_vs_reference(
    session_path: Path, input_name: str, inputs: NDArray[np.float32], reference: NDArray[np.float64]
) -> float:
    """Largest absolute difference between an ONNX model's first output and ``reference``."""
    session = ort.InferenceSession(str(session_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {input_name: inputs})[0]
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - reference)))
