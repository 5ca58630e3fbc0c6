"""Fixtures of the scoring tests: a tiny fleet, its model registered as champion."""

from __future__ import annotations

import pytest

from models.fleet.export import export_and_register, history_sha256
from models.registry import FileRegistry, ModelEntry
from tests.scoring.tiny_fleet import MACHINE_TYPE, TinyFleet, make_tiny_fleet


@pytest.fixture(scope="session")
def tiny_fleet(tmp_path_factory: pytest.TempPathFactory) -> TinyFleet:
    return make_tiny_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(scope="session")
def fleet_registry(
    tiny_fleet: TinyFleet, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FileRegistry, ModelEntry]:
    registry = FileRegistry(tmp_path_factory.mktemp("registry"))
    from models.fleet.dataset import build_samples

    samples = build_samples(tiny_fleet.daily, tiny_fleet.outcomes, 21, 10, 40, gap_share=0.3)
    entry = export_and_register(
        tiny_fleet.model,
        registry,
        training_data="tiny simulated fleet",
        training_sha256=history_sha256(tiny_fleet.history, MACHINE_TYPE),
        parity_inputs=samples.features[::7],
    )
    return registry, registry.promote(entry.name, entry.version)
