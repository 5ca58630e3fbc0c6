"""Fixtures of the models tests: small C-MAPSS-format data written to a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from models.rul.cmapss_protocol import PreparedSubset


def write_cmapss(
    folder: Path,
    subset: str = "FD001",
    units: int = 12,
    seed: int = 0,
    conditions: int = 1,
    fault_modes: int = 1,
    shortest_test: int | None = None,
) -> Path:
    """Synthetic run-to-failure data in the C-MAPSS format (26 columns, no header).

    Sensors drift with wear (exponential degradation) plus noise; with ``conditions`` > 1
    the settings jump between operating points that shift the sensors' levels (FD002 and
    FD004 have six); with ``fault_modes`` = 2 every other unit wears through a second set
    of sensors (FD003, FD004). ``shortest_test`` cuts the first test unit to that many
    cycles (FD002/FD004 have test units of 19 cycles).
    """
    rng = np.random.default_rng(seed)
    points = np.array([[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60],
                       [35, 0.84, 100], [42, 0.84, 100]], dtype=float)[:conditions]  # fmt: skip

    signatures = [np.linspace(1, 5, 21), np.linspace(5, 1, 21) * (np.arange(21) % 2)]

    def trajectory(unit: int, length: int) -> np.ndarray:
        cycles = np.arange(1, length + 1)
        wear = np.exp((cycles - length) / 40.0)
        which = rng.integers(0, conditions, size=length)
        settings = points[which] + rng.normal(0, 0.001, size=(length, 3))
        signature = signatures[unit % fault_modes]
        sensors = (
            100 + 10 * which[:, None] + wear[:, None] * signature[None, :]
            + rng.normal(0, 0.2, size=(length, 21))
        )  # fmt: skip
        return np.column_stack([np.full(length, unit), cycles, settings, sensors])

    train = np.vstack([trajectory(u, int(rng.integers(90, 140))) for u in range(1, units + 1)])
    test_rows, rul = [], []
    for u in range(1, units + 1):
        full = trajectory(u, int(rng.integers(90, 140)))
        cut = int(rng.integers(15, len(full) - 5))
        if u == 1 and shortest_test is not None:
            cut = shortest_test
        test_rows.append(full[:cut])
        rul.append(len(full) - cut)
    np.savetxt(folder / f"train_{subset}.txt", train, fmt="%.4f")
    np.savetxt(folder / f"test_{subset}.txt", np.vstack(test_rows), fmt="%.4f")
    np.savetxt(folder / f"RUL_{subset}.txt", np.array(rul), fmt="%d")
    return folder


@pytest.fixture
def cmapss_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "cmapss"
    folder.mkdir()
    return write_cmapss(folder)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> PreparedSubset:
    """A small synthetic FD001 subset, prepared as the benchmark prepares it (one a module)."""
    from models.datasets.cmapss import load_subset
    from models.rul.cmapss_protocol import prepare

    return prepare(load_subset(write_cmapss(tmp_path_factory.mktemp("cmapss")), "FD001"))
