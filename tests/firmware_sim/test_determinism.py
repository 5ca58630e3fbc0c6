"""Same seed and arguments: byte-identical output. Another seed: other data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from firmware_sim import SimConfig, generate
from firmware_sim.engagement import simulate_engagement
from firmware_sim.engine import Simulation
from firmware_sim.fleet import build_fleet


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path, small_config: SimConfig) -> None:
    config = small_config.model_copy(update={"devices": 15, "days": 3})
    generate(config, tmp_path / "a", writer_thread=True)
    generate(config, tmp_path / "b", writer_thread=False)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b
    assert any(name.startswith("telemetry/") for name in a)
    assert "ground_truth/failures.parquet" in a and "exports/crm_accounts.csv" in a


def test_another_seed_gives_other_data(tmp_path: Path, small_config: SimConfig) -> None:
    config = small_config.model_copy(update={"devices": 15, "days": 2})
    generate(config, tmp_path / "a")
    generate(config.model_copy(update={"seed": config.seed + 1}), tmp_path / "b")
    ta = ds.dataset(tmp_path / "a" / "telemetry").to_table(columns=["ambient_temp_c"])
    tb = ds.dataset(tmp_path / "b" / "telemetry").to_table(columns=["ambient_temp_c"])
    assert not np.array_equal(ta["ambient_temp_c"].to_numpy(), tb["ambient_temp_c"].to_numpy())
    crm_a = (tmp_path / "a" / "exports" / "crm_accounts.csv").read_bytes()
    crm_b = (tmp_path / "b" / "exports" / "crm_accounts.csv").read_bytes()
    assert crm_a != crm_b


def test_a_longer_run_starts_with_the_shorter_one() -> None:
    """Days are keyed by (type, day): simulating more days does not change earlier ones."""
    short = SimConfig(devices=12, days=2, seed=3)
    long = short.model_copy(update={"days": 4})

    def first_days(config: SimConfig) -> list[np.ndarray]:
        fleet = build_fleet(config)
        sim = Simulation(config, fleet, simulate_engagement(config.seed, config.n_accounts, 4))
        out = []
        for day, blocks in enumerate(sim.days()):
            if day == 2:
                break
            out += [b.values["motor_current_a"] for b in blocks]
        return out

    for x, y in zip(first_days(short), first_days(long), strict=True):
        np.testing.assert_array_equal(x, y)
