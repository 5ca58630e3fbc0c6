"""The manifest that ships with every model: what it expects, how it was made, how good it is.

Serving reads only the manifest and the ONNX file; nothing else about training is needed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import ManifestError

SCHEMA_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
ModelKind = Literal["rul_sequence", "tabular_gbm", "anomaly_pca"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Normalisation(_Frozen):
    """Z-score per operating condition, fitted on training data.

    A row's condition is the nearest centroid of its settings, each setting divided by
    ``setting_scale``; its features are then ``(x - mean[c]) / std[c]``.
    """

    kind: Literal["zscore_per_condition"] = "zscore_per_condition"
    setting_names: tuple[str, ...]
    setting_scale: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]
    mean: tuple[tuple[float, ...], ...]
    std: tuple[tuple[float, ...], ...]


class WindowSpec(_Frozen):
    """How a window is built from a device's most recent readings.

    Attributes:
        length: readings per window (the last ``length``).
        padding: a history shorter than ``length`` is padded at the front by repeating
            its first reading; padded steps are marked missing in the mask.
        age_scale: when set, an extra channel holds the reading's age (cycles or hours
            since the device started) divided by this.
    """

    length: int = Field(gt=0)
    padding: Literal["repeat_first"] = "repeat_first"
    age_scale: float | None = None


class TensorSpec(_Frozen):
    name: str
    shape: tuple[int | str, ...]
    dtype: Literal["float32", "float64", "int64"] = "float32"


class Manifest(_Frozen):
    """Everything serving and the registry need to know about one model version."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    kind: ModelKind
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    feature_names: tuple[str, ...]
    window: WindowSpec | None = None
    normalisation: Normalisation | None = None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    time_unit: Literal["cycles", "hours", "rows"] = "cycles"
    rul_cap: float | None = None
    horizon: float | None = None
    failure_modes: tuple[str, ...] = ()
    training_data: str
    training_data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, float] = Field(default_factory=dict)
    artifact: str = "model.onnx"
    artifact_sha256: str = Field(default="0" * 64, pattern=r"^[0-9a-f]{64}$")
    opset: int
    framework: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


def read_manifest(path: Path) -> Manifest:
    """Read a manifest file (or ``manifest.json`` inside a directory).

    Raises:
        ManifestError: missing, not JSON, invalid, or of another schema version.
    """
    file = path / MANIFEST_FILE if path.is_dir() else path
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{file}: no manifest") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{file}: not JSON ({exc})") from None
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            f"{file}: schema version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"{file}: invalid manifest: {exc}") from None
