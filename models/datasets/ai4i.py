"""AI4I 2020 predictive-maintenance data (UCI 601): loading and features with physical meaning.

The five failure-mode columns (TWF, HDF, PWF, OSF, RNF) are components of the target
``Machine failure``: they are loaded as labels, never as inputs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from models.datasets.hashing import file_sha256
from models.errors import DataSetError

FILE_NAME: Final = "ai4i2020.csv"
MODE_COLUMNS: Final = ("TWF", "HDF", "PWF", "OSF", "RNF")
TYPES: Final = ("L", "M", "H")
RAW_FEATURES: Final = (
    "type",
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
)
PHYSICAL_FEATURES: Final = (
    *RAW_FEATURES,
    "power_w",
    "temperature_difference_k",
    "wear_torque_min_nm",
)
_SOURCE_COLUMNS: Final = {
    "air_temperature_k": "Air temperature [K]",
    "process_temperature_k": "Process temperature [K]",
    "rotational_speed_rpm": "Rotational speed [rpm]",
    "torque_nm": "Torque [Nm]",
    "tool_wear_min": "Tool wear [min]",
}


@dataclass(frozen=True)
class Ai4i:
    """The 10,000 rows as arrays.

    Attributes:
        raw: ``(n, 6)`` in ``RAW_FEATURES`` order; ``type`` is 0/1/2 for L/M/H.
        failure: ``Machine failure`` (0/1).
        modes: ``(n, 5)`` flags in ``MODE_COLUMNS`` order (labels only).
    """

    raw: NDArray[np.float64]
    failure: NDArray[np.int64]
    modes: NDArray[np.int64]
    sha256: str

    def mode_labels(self) -> NDArray[np.int64]:
        """One class per row: 0 = no failure, 1 + the first flagged mode otherwise.

        A failure without a flag (9 rows) counts as no identified mode (0) and a flag on a
        row without failure (18 RNF rows) is ignored, following ``Machine failure``.
        """
        flagged = self.modes.argmax(axis=1) + 1
        has_flag = self.modes.max(axis=1) > 0
        out: NDArray[np.int64] = np.where((self.failure == 1) & has_flag, flagged, 0)
        return out


def load_ai4i(data_dir: Path) -> Ai4i:
    """Read ``ai4i2020.csv`` from ``data_dir``.

    Raises:
        DataSetError: the file is missing or a column is absent or malformed.
    """
    path = data_dir / FILE_NAME
    if not path.is_file():
        raise DataSetError(str(path), "file not found")
    raw, failure, modes = [], [], []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                raw.append(
                    [float(TYPES.index(row["Type"]))]
                    + [float(row[_SOURCE_COLUMNS[name]]) for name in RAW_FEATURES[1:]]
                )
                failure.append(int(row["Machine failure"]))
                modes.append([int(row[name]) for name in MODE_COLUMNS])
        except (KeyError, ValueError) as exc:
            raise DataSetError(str(path), f"line {reader.line_num}: {exc!r}") from None
    return Ai4i(
        raw=np.asarray(raw, dtype=np.float64),
        failure=np.asarray(failure, dtype=np.int64),
        modes=np.asarray(modes, dtype=np.int64),
        sha256=file_sha256(path),
    )


def physical_features(raw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Raw columns plus mechanical power, process-air temperature difference, wear x torque."""
    speed = raw[:, RAW_FEATURES.index("rotational_speed_rpm")]
    torque = raw[:, RAW_FEATURES.index("torque_nm")]
    wear = raw[:, RAW_FEATURES.index("tool_wear_min")]
    power = torque * speed * 2.0 * np.pi / 60.0
    difference = (
        raw[:, RAW_FEATURES.index("process_temperature_k")]
        - raw[:, RAW_FEATURES.index("air_temperature_k")]
    )
    return np.column_stack([raw, power, difference, wear * torque])
