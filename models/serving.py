"""Scoring with onnxruntime and a manifest only (no torch, no training code).

``OnnxModel`` opens any registered artifact after checking its SHA-256 against the
manifest; ``SequenceScorer`` turns devices' raw recent readings into the network's
windows (per-condition normalisation, missing readings masked, short histories padded)
and returns RUL, risk within the horizon and the failure mode. Calls are blocking:
async callers run them in a thread or process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from models.datasets.hashing import file_sha256
from models.errors import ManifestError
from models.manifest import Manifest, read_manifest
from models.rul.normalise import normalise
from models.rul.windows import last_windows

SEQUENCE_ROWS_PER_CALL: Final = 32
"""Windows per onnxruntime call when scoring a sequence model: small enough that a call's
activations stay in the caches, large enough that the per-call overhead does not show.
For the declared C-MAPSS ensemble, 10,000 windows on one thread, two runs: 32 and 64 rows
per call 1.14-1.19 s, 256 rows 1.29-1.31 s, one call 1.49-1.52 s
(``benchmarks.models.onnx_vs_torch``)."""


class OnnxModel:
    """A manifest and an onnxruntime session over its artifact.

    Raises:
        ManifestError: the manifest is invalid or the artifact's hash differs from it.
    """

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.manifest: Manifest = read_manifest(directory)
        artifact = directory / self.manifest.artifact
        if not artifact.is_file() or file_sha256(artifact) != self.manifest.artifact_sha256:
            raise ManifestError(f"{artifact}: missing or not the artifact the manifest names")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Optimised at load rather than saved optimised at export: level ALL rewrites
        # convolutions into the blocked layout of the CPU it runs on (AVX2 vs AVX-512).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(artifact), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name: str = self.session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def run(
        self, inputs: NDArray[np.float32], rows_per_call: int | None = None
    ) -> dict[str, NDArray[np.float32]]:
        """Every output for ``inputs``, batch first.

        With ``rows_per_call`` the rows go through the session that many at a time and the
        outputs are concatenated: the same values, and for a convolutional network much
        less memory traffic, since each call's activations stay in the CPU's caches.

        Raises:
            ValueError: ``rows_per_call`` is not positive.
        """
        if rows_per_call is not None and rows_per_call < 1:
            raise ValueError(f"rows_per_call must be at least 1, not {rows_per_call}")
        step = inputs.shape[0] if rows_per_call is None else rows_per_call
        if inputs.shape[0] <= step:
            return self._run_once(inputs)
        parts = [
            self._run_once(inputs[start : start + step])
            for start in range(0, inputs.shape[0], step)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _run_once(self, inputs: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
        outputs = self.session.run(self.output_names, {self.input_name: inputs})
        return {
            name: np.asarray(value, dtype=np.float32)
            for name, value in zip(self.output_names, outputs, strict=True)
        }


@dataclass(frozen=True)
class DeviceHistory:
    """A device's most recent readings, oldest first (at least the window's length if known).

    Attributes:
        values: ``(n, len(feature_names))`` raw readings; NaN where missing (offline).
        settings: ``(n, len(setting_names))`` operating settings, or ``None`` for a
            device type with one operating condition.
        ages: ``(n,)`` age of each reading, needed when the window has an age channel.
    """

    values: NDArray[np.float64]
    settings: NDArray[np.float64] | None = None
    ages: NDArray[np.float64] | None = None


class SequenceScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    rul: float
    risk: float
    failure_mode: str
    mode_probabilities: dict[str, float]
    model: str
    model_version: str


class SequenceScorer:
    """Batch scoring for a ``rul_sequence`` model."""

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.model = OnnxModel(directory, threads)
        manifest = self.model.manifest
        if manifest.kind != "rul_sequence" or manifest.window is None:
            raise ManifestError(f"{directory}: not a sequence model")
        self.manifest = manifest

    def windows(self, histories: list[DeviceHistory]) -> NDArray[np.float32]:
        """The network's input for each device's last window."""
        spec = self.manifest.window
        assert spec is not None
        norm = self.manifest.normalisation
        sequences = []
        for history in histories:
            values = history.values[-spec.length :]
            if norm is not None:
                settings = (
                    history.settings[-spec.length :]
                    if history.settings is not None
                    else np.zeros((values.shape[0], len(norm.setting_names)))
                )
                values = normalise(norm, settings, values)
            sequences.append(values)
        ages = None
        if spec.age_scale is not None:
            ages = []
            for history in histories:
                if history.ages is None:
                    raise ValueError(f"{self.manifest.name} needs the readings' ages")
                ages.append(history.ages[-spec.length :])
        return last_windows(sequences, spec, ages)

    def score_windows(self, inputs: NDArray[np.float32]) -> list[SequenceScore]:
        modes = self.manifest.failure_modes or ("unknown",)
        result = self.model.run(inputs, SEQUENCE_ROWS_PER_CALL)
        return [
            SequenceScore(
                rul=float(rul),
                risk=float(risk),
                failure_mode=modes[int(np.argmax(probabilities))],
                mode_probabilities={
                    m: float(p) for m, p in zip(modes, probabilities, strict=False)
                },
                model=self.manifest.name,
                model_version=self.manifest.version,
            )
            for rul, risk, probabilities in zip(
                result["rul"], result["risk"], result["mode_probabilities"], strict=True
            )
        ]

    def score(self, histories: list[DeviceHistory]) -> list[SequenceScore]:
        return self.score_windows(self.windows(histories)) if histories else []
