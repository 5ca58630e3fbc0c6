"""``fleetcare models benchmark sim``: train on one simulated fleet, judge on another.

Two histories are generated with different seeds (so different devices, sites, usage,
failures); each machine type's model is trained on the first, exported to ONNX and
registered, then the second fleet is scored day by day through onnxruntime and its
alerts are compared with the ground truth (``models.fleet.alerts``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from models.fleet.alerts import (
    ModeAlertQuality,
    ModeConfusion,
    ScoredDays,
    alert_quality,
    mode_confusion,
)
from models.fleet.export import export_and_register, history_sha256
from models.fleet.scorer import FleetScorer
from models.fleet.training import FleetConfig, load_history, samples_of, train_fleet_model
from models.registry import FileRegistry

log = logging.getLogger(__name__)
MACHINE_TYPES = ("centrifugal_pump", "air_compressor")


@dataclass(frozen=True)
class SimBenchmarkConfig:
    """``devices`` x ``days`` per fleet; the training fleet may be larger or longer
    (``train_devices``, ``train_days``; ``None``: the same as the test fleet), as a
    manufacturer's installed base and its history usually are."""

    devices: int = 300
    days: int = 365
    interval_s: int = 600
    train_seed: int = 1
    test_seed: int = 2
    model: FleetConfig = field(default_factory=FleetConfig)
    train_devices: int | None = None
    train_days: int | None = None

    def fleet(self, role: str) -> tuple[int, int, int]:
        """``(devices, days, seed)`` of the ``train`` or ``test`` fleet."""
        if role == "train":
            return (
                self.train_devices or self.devices,
                self.train_days or self.days,
                self.train_seed,
            )
        return self.devices, self.days, self.test_seed


class TypeResult(BaseModel):
    # names the report's plot files: letters, digits, '_' and '-' only
    machine_type: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    model: str
    version: str
    train_seconds: float
    training_rows: int
    failures_in_training: dict[str, int]
    thresholds: dict[str, float]
    test_device_days: int
    modes: list[ModeAlertQuality]
    confusion: ModeConfusion | None = None  # None in results written before it existed


class SimBenchmarkResult(BaseModel):
    config: dict[str, object]
    generate_seconds: float
    types: list[TypeResult]

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def generate_history(devices: int, days: int, interval_s: int, seed: int, out: Path) -> Path:
    from firmware_sim import SimConfig, generate

    if (out / "manifest.json").is_file():
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["config"]
        if (manifest["devices"], manifest["days"], manifest["interval_s"], manifest["seed"]) == (
            devices, days, interval_s, seed,
        ):  # fmt: skip
            return out
    generate(
        SimConfig(devices=devices, days=days, interval_s=interval_s, seed=seed),
        out,
        overwrite=True,
    )
    return out


def run_sim_benchmark(
    config: SimBenchmarkConfig,
    work: Path,
    registry: FileRegistry,
    promote: bool = False,
    say: Callable[[str], None] = log.info,
) -> SimBenchmarkResult:
    started = time.perf_counter()
    histories = {}
    for role in ("train", "test"):
        devices, days, seed = config.fleet(role)
        say(f"generating the {role} fleet: {devices} x {days} days, seed {seed}")
        histories[role] = generate_history(
            devices, days, config.interval_s, seed, work / f"{role}-seed{seed}"
        )
    generated = time.perf_counter() - started
    results = []
    for machine_type in MACHINE_TYPES:
        daily, outcomes = load_history(histories["train"], machine_type)
        say(f"training {machine_type} on {len(daily.device_ids)} devices")
        model = train_fleet_model(daily, outcomes, config.model)
        test_daily, test_outcomes = load_history(histories["test"], machine_type)
        test = samples_of(test_daily, test_outcomes, config.model)
        entry = export_and_register(
            model,
            registry,
            training_data="simulated fleet, seed {2}, {0} devices x {1} days".format(
                *config.fleet("train")
            )
            + f" at {config.interval_s} s: {machine_type}",
            training_sha256=history_sha256(histories["train"], machine_type),
            parity_inputs=test.features[:: max(1, test.features.shape[0] // 2000)],
        )
        scorer = FleetScorer(entry.directory)
        out = scorer.run(test.features)
        scored = ScoredDays(test.device, test.day, out["mode_probabilities"])
        horizon, first_day = config.model.horizon_days, config.model.first_day
        quality = alert_quality(scored, test_outcomes, scorer.thresholds, horizon, first_day)
        confusion = mode_confusion(scored, test_outcomes, scorer.thresholds, horizon, first_day)
        if promote:
            registry.promote(entry.name, entry.version)
        for q in quality:
            say(
                f"  {machine_type} {q.mode}: precision {_fmt(q.precision)}, recall "
                f"{_fmt(q.recall)} ({q.detected}/{q.failures}), median lead "
                f"{_fmt(q.median_lead_days)} d"
            )
        results.append(
            TypeResult(
                machine_type=machine_type,
                model=entry.name,
                version=entry.version,
                train_seconds=model.seconds,
                training_rows=model.training_rows,
                failures_in_training=model.failures,
                thresholds=model.thresholds,
                test_device_days=int(test.device.size),
                modes=quality,
                confusion=confusion,
            )
        )
    from dataclasses import asdict

    return SimBenchmarkResult(config=asdict(config), generate_seconds=generated, types=results)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def pooled(result: SimBenchmarkResult) -> dict[str, float]:
    """Precision, recall and median lead over every predictable (wear) failure."""
    correct = judged = detected = failures = 0
    leads: list[float] = []
    for t in result.types:
        for q in t.modes:
            if q.threshold is None:
                continue
            correct += q.correct_alerts
            judged += q.alerts - q.censored_alerts
            detected += q.detected
            failures += q.failures
            leads += q.lead_days
    return {
        "precision": correct / judged if judged else float("nan"),
        "recall": detected / failures if failures else float("nan"),
        "median_lead_days": float(np.median(leads)) if leads else float("nan"),
        "failures": float(failures),
    }


def pooled_line(result: SimBenchmarkResult) -> str:
    """The pooled figures in a sentence (what the command and the benchmark print)."""
    p = pooled(result)
    return (
        f"wear failures: precision {p['precision']:.3f}, recall {p['recall']:.3f}, median lead "
        f"{p['median_lead_days']:.1f} days over {p['failures']:.0f} failures"
    )


def markdown_table(result: SimBenchmarkResult) -> str:
    """One row per machine type and failure mode, then the pooled wear-failure row."""
    lines = [
        "| machine | mode | cause | threshold | alerts (censored) | precision | failures | "
        "detected | recall | median lead (days) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in result.types:
        for q in t.modes:
            cause = "wear" if q.mode in t.failures_in_training else "random"
            lines.append(
                f"| {t.machine_type} | {q.mode} | {cause} | "
                f"{'-' if q.threshold is None else f'{q.threshold:.2f}'} | "
                f"{q.alerts} ({q.censored_alerts}) | {_fmt(q.precision)} | {q.failures} | "
                f"{q.detected} | {_fmt(q.recall)} | {_fmt(q.median_lead_days)} |"
            )
    p = pooled(result)
    lines.append(
        f"| **all** | **wear modes with a model** | | | | **{p['precision']:.2f}** | "
        f"**{p['failures']:.0f}** | | **{p['recall']:.2f}** | **{p['median_lead_days']:.1f}** |"
    )
    return "\n".join(lines)
