"""The demo's failure models: trained once on a short simulated history, then reused.

The first run generates a history (a fleet of another seed than the live one, so the model
is judged on devices it never saw), trains one fleet model per machine type, exports it to
ONNX, registers and promotes it in a registry under the data directory, and writes a marker
naming what it trained. Later runs with the same plan find the marker and the champions and
start at once. Every stage prints what it is doing: training takes tens of seconds.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.fleet.features import RECIPE_VERSION

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun

MACHINE_TYPES = ("centrifugal_pump", "air_compressor")
_MARKER = "demo-models.json"


@dataclass(frozen=True)
class TrainingPlan:
    """The history the demo's models learn from.

    Attributes:
        devices / days / interval_s / seed: the simulated fleet generated for training.
        parity_rows: feature rows checked ONNX against scikit-learn at export.
    """

    devices: int = 200
    days: int = 240
    interval_s: int = 900
    seed: int = 1
    parity_rows: int = 500

    def key(self) -> dict[str, object]:
        return {**asdict(self), "recipe_version": RECIPE_VERSION}


@dataclass(frozen=True)
class DemoModels:
    """The registry holding the champions, and whether this run trained them."""

    registry_dir: Path
    names: tuple[str, ...]
    trained_now: bool
    seconds: float


def _cached(registry_dir: Path, plan: TrainingPlan) -> tuple[str, ...] | None:
    from models.registry import FileRegistry

    marker = registry_dir / _MARKER
    if not marker.is_file():
        return None
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if recorded.get("plan") != plan.key():
        return None
    registry = FileRegistry(registry_dir)
    names = tuple(str(n) for n in recorded.get("names", []))
    if not names or any(registry.champion(name) is None for name in names):
        return None
    return names


def _train_one(
    history: Path, machine_type: str, plan: TrainingPlan, registry_dir: Path
) -> tuple[str, str]:
    from models.fleet.export import export_and_register, history_sha256, parity_inputs
    from models.fleet.training import FleetConfig, load_history, train_fleet_model
    from models.registry import FileRegistry

    config = FleetConfig()
    daily, outcomes = load_history(history, machine_type)
    model = train_fleet_model(daily, outcomes, config)
    registry = FileRegistry(registry_dir)
    entry = export_and_register(
        model,
        registry,
        training_data=f"simulated fleet, seed {plan.seed}, {plan.devices} devices x "
        f"{plan.days} days at {plan.interval_s} s: {machine_type} (fleetcare demo)",
        training_sha256=history_sha256(history, machine_type),
        parity_inputs=parity_inputs(daily, outcomes, config, plan.parity_rows),
    )
    registry.promote(entry.name, entry.version)
    return entry.name, entry.version


def ensure_demo_models(
    data_dir: Path, plan: TrainingPlan, progress: Callable[[str], None]
) -> DemoModels:
    """The champions of the demo's registry, trained first if the cache does not match."""
    from firmware_sim import SimConfig, generate

    registry_dir = data_dir / "demo" / "models"
    started = time.monotonic()
    names = _cached(registry_dir, plan)
    if names is not None:
        progress(f"reusing the cached models in {registry_dir}")
        return DemoModels(registry_dir, names, False, time.monotonic() - started)
    shutil.rmtree(registry_dir, ignore_errors=True)
    registry_dir.mkdir(parents=True)
    history = data_dir / "demo" / "training-history"
    progress(
        f"generating a training history: {plan.devices} devices x {plan.days} days "
        f"(seed {plan.seed}, one reading per {plan.interval_s} s)"
    )
    generate(
        SimConfig(seed=plan.seed, devices=plan.devices, days=plan.days, interval_s=plan.interval_s),
        history,
        overwrite=True,
    )
    trained = []
    for number, machine_type in enumerate(MACHINE_TYPES, start=1):
        t0 = time.monotonic()
        progress(f"training the {machine_type} model ({number}/{len(MACHINE_TYPES)})")
        name, version = _train_one(history, machine_type, plan, registry_dir)
        progress(f"{name} {version} trained, exported to ONNX and promoted "
                 f"in {time.monotonic() - t0:.0f} s")  # fmt: skip
        trained.append(name)
    shutil.rmtree(history, ignore_errors=True)
    marker = {"plan": plan.key(), "names": trained}
    (registry_dir / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return DemoModels(registry_dir, tuple(trained), True, time.monotonic() - started)


#: A run shorter than this gets no model (training alone takes longer than the run).
MIN_SCORED_RUN_S = 30.0


class ModelStep:
    """Train the demo's models, or reuse the cached ones (skipped for very short runs)."""

    title = "failure models"

    def __init__(self, plan: TrainingPlan | None = None) -> None:
        self.plan = plan or TrainingPlan()
        self.models: DemoModels | None = None

    def run(self, demo: DemoRun) -> None:
        from fleetcare.cli.state import say

        if demo.duration_s is not None and demo.duration_s < MIN_SCORED_RUN_S:
            demo.note(
                "models",
                f"skipped: a {demo.duration_s:g} s run is too short for the scoring loop "
                f"(give --duration {MIN_SCORED_RUN_S:g} or more)",
            )
            return
        missing = [m for m in ("sklearn", "onnx") if importlib.util.find_spec(m) is None]
        if missing and _cached(demo.settings.data_dir / "demo" / "models", self.plan) is None:
            demo.note(
                "models",
                f"skipped: training needs {', '.join(missing)} "
                "(pip install 'fleetcare[train]'); the run goes on without scoring",
            )
            return
        self.models = ensure_demo_models(
            demo.settings.data_dir, self.plan, lambda line: say(demo.console, f"  {line}")
        )
        how = "trained now" if self.models.trained_now else "cached"
        demo.note(
            "models",
            f"{', '.join(self.models.names)} ({how}, {self.models.seconds:.0f} s; trained on "
            f"{self.plan.devices} simulated devices x {self.plan.days} days, "
            f"seed {self.plan.seed})",
        )
