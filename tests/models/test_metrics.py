from __future__ import annotations

import math

import pytest

from models.rul.evaluation import phm08_score, rmse


def test_rmse() -> None:
    assert rmse([1, 2, 3], [1, 2, 3]) == 0
    assert rmse([3, 4], [0, 0]) == pytest.approx(math.sqrt(12.5))


def test_phm08_score_punishes_late_more_than_early() -> None:
    late = phm08_score([110], [100])
    early = phm08_score([90], [100])
    assert late == pytest.approx(math.e - 1)
    assert early == pytest.approx(math.exp(10 / 13) - 1)
    assert late > early
    assert phm08_score([100, 100], [100, 100]) == 0
