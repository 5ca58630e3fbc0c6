"""NASA C-MAPSS turbofan run-to-failure data: loading any subset and the RUL protocol.

Files are whitespace-separated, no header: unit, cycle, three operational settings and
21 sensors. ``train_FD00X`` runs to failure; ``test_FD00X`` stops early and
``RUL_FD00X`` holds the true remaining life after each test unit's last cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from models.datasets.hashing import files_sha256
from models.errors import DataSetError

SUBSETS: Final = ("FD001", "FD002", "FD003", "FD004")
SETTING_NAMES: Final = ("setting1", "setting2", "setting3")
SENSOR_NAMES: Final = tuple(f"s{i}" for i in range(1, 22))
#: Sensors that vary in FD001 (the others are constant); the usual choice for every subset.
INFORMATIVE_SENSORS: Final = (
    "s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21",
)  # fmt: skip
#: Fault modes per subset (from the data set's readme); none is labelled per unit.
FAULT_MODES: Final = {"FD001": 1, "FD002": 1, "FD003": 2, "FD004": 2}
_N_COLUMNS: Final = 26


@dataclass(frozen=True)
class Trajectory:
    """One engine's cycles, in order.

    Attributes:
        unit: the engine number.
        cycles: cycle numbers, shape ``(n,)``.
        settings: the three operational settings, shape ``(n, 3)``.
        sensors: the 21 sensors in ``SENSOR_NAMES`` order, shape ``(n, 21)``.
    """

    unit: int
    cycles: NDArray[np.float64]
    settings: NDArray[np.float64]
    sensors: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.cycles.shape[0])

    def select(self, names: tuple[str, ...]) -> NDArray[np.float64]:
        """The named sensors as columns, shape ``(n, len(names))``."""
        index = [SENSOR_NAMES.index(name) for name in names]
        return self.sensors[:, index]


@dataclass(frozen=True)
class CmapssSubset:
    """One subset: training trajectories, test trajectories and the test units' true RUL."""

    name: str
    train: tuple[Trajectory, ...]
    test: tuple[Trajectory, ...]
    test_rul: NDArray[np.float64]
    sha256: str


def subset_files(data_dir: Path, subset: str) -> tuple[Path, Path, Path]:
    """``train_``, ``test_`` and ``RUL_`` files of ``subset`` in ``data_dir``."""
    if subset not in SUBSETS:
        raise DataSetError(str(data_dir), f"unknown C-MAPSS subset {subset!r}; one of {SUBSETS}")
    return (
        data_dir / f"train_{subset}.txt",
        data_dir / f"test_{subset}.txt",
        data_dir / f"RUL_{subset}.txt",
    )


def read_trajectories(path: Path) -> tuple[Trajectory, ...]:
    """Parse one ``train_``/``test_`` file into trajectories ordered by unit."""
    if not path.is_file():
        raise DataSetError(str(path), "file not found")
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataSetError(str(path), f"not a C-MAPSS table: {exc}") from None
    if table.shape[1] != _N_COLUMNS:
        raise DataSetError(str(path), f"expected {_N_COLUMNS} columns, got {table.shape[1]}")
    units = table[:, 0].astype(np.int64)
    trajectories = []
    for unit in np.unique(units):
        rows = table[units == unit]
        rows = rows[np.argsort(rows[:, 1], kind="stable")]
        trajectories.append(
            Trajectory(
                unit=int(unit),
                cycles=rows[:, 1].copy(),
                settings=rows[:, 2:5].copy(),
                sensors=rows[:, 5:].copy(),
            )
        )
    return tuple(trajectories)


def load_subset(data_dir: Path, subset: str) -> CmapssSubset:
    """Load ``subset`` from ``data_dir`` (the folder holding the ``*_FD00X.txt`` files).

    Raises:
        DataSetError: a file is missing or malformed, or the RUL file does not have one
            value per test unit.
    """
    train_path, test_path, rul_path = subset_files(data_dir, subset)
    train = read_trajectories(train_path)
    test = read_trajectories(test_path)
    if not rul_path.is_file():
        raise DataSetError(str(rul_path), "file not found")
    rul = np.loadtxt(rul_path, dtype=np.float64, ndmin=1).reshape(-1)
    if rul.shape[0] != len(test):
        raise DataSetError(str(rul_path), f"{rul.shape[0]} RUL values for {len(test)} test units")
    return CmapssSubset(
        name=subset,
        train=train,
        test=test,
        test_rul=rul,
        sha256=files_sha256((train_path, test_path, rul_path)),
    )


def piecewise_rul(n_cycles: int, cap: float, rul_at_end: float = 0.0) -> NDArray[np.float64]:
    """Remaining life at each of ``n_cycles`` cycles, capped at ``cap`` (piece-wise linear).

    ``rul_at_end`` is the life left after the last cycle (0 for a run to failure).
    """
    remaining = rul_at_end + np.arange(n_cycles - 1, -1, -1, dtype=np.float64)
    return np.minimum(remaining, cap)
