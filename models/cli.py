"""``fleetcare models``: train, evaluate, promote and list models; benchmarks and reports.

Mounted by the root CLI with ``app.add_typer(models.cli.app, name="models")``. Training
code (torch, scikit-learn, tsfresh) is imported inside the commands that need it, so
``list`` and ``promote`` work with the runtime dependencies only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from fleetcare.config import load_settings
from models.errors import ModelsError
from models.registry import FileRegistry
from models.settings import ModelsSettings

app = typer.Typer(
    help="Failure models: train, evaluate, promote, list, benchmark, report.", no_args_is_help=True
)
train_app = typer.Typer(help="Train a model and register it as a candidate.", no_args_is_help=True)
benchmark_app = typer.Typer(help="Benchmarks on public data sets.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(benchmark_app, name="benchmark")

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data", help="folder with the data set's files (default: $FLEETCARE_DATA_SETS/<set>)"
    ),
]
SubsetOption = Annotated[str, typer.Option("--subset", help="C-MAPSS subset: FD001..FD004")]
RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="registry folder (default: $FLEETCARE_MODEL_DIR)")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="also record the change in model_versions there"),
]


def _settings() -> ModelsSettings:
    return load_settings(ModelsSettings)


def _registry(path: Path | None) -> FileRegistry:
    return FileRegistry(path if path is not None else _settings().registry_dir)


def _data(path: Path | None, data_set: str) -> Path:
    return path if path is not None else _settings().data_sets / data_set


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@contextmanager
def models_errors_reported() -> Iterator[None]:
    """A models error ends the command with its message and exit code 1, no traceback."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        yield
    except ModelsError as exc:
        exit_with_error(str(exc))
    except OSError as exc:  # an output or work folder that cannot be made or written
        exit_with_error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))


def exit_with_error(message: str) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"error: {message}", style="bold red", markup=False)
    raise typer.Exit(1)


def announce_registered(entry_name: str, version: str, metrics: dict[str, float]) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    _console().print(f"registered {entry_name} {version} (candidate): {shown}", markup=False)


@train_app.command("rul")
def train_rul(
    data: DataOption = None,
    subset: SubsetOption = "FD001",
    registry: RegistryOption = None,
    seed: int = 0,
    epochs: Annotated[
        int | None, typer.Option(help="epochs per network (default: the benchmark's)")
    ] = None,
    ensemble: Annotated[
        int | None, typer.Option(help="networks averaged (default: the benchmark's)")
    ] = None,
    name: str | None = None,
) -> None:
    """Sequence network (1D-CNN) for RUL and risk within the horizon, exported to ONNX."""
    from models.rul.cmapss_benchmark import default_config
    from models.train import train_rul_sequence

    with models_errors_reported():
        from dataclasses import replace

        config = replace(default_config(subset), seed=seed)
        if epochs is not None:
            config = replace(config, epochs=epochs)
        if ensemble is not None:
            config = replace(config, ensemble=ensemble)
        entry = train_rul_sequence(_data(data, "cmapss"), subset, _registry(registry), config, name)
        announce_registered(entry.name, entry.version, entry.metrics)


@train_app.command("features")
def train_features(
    data: DataOption = None,
    subset: SubsetOption = "FD001",
    registry: RegistryOption = None,
    seed: int = 0,
    name: str | None = None,
) -> None:
    """tsfresh features (selected on training data) + gradient boosting, exported to ONNX."""
    from models.features.rul_gbm import FeatureConfig
    from models.train import train_rul_features

    with models_errors_reported():
        entry = train_rul_features(
            _data(data, "cmapss"), subset, _registry(registry), FeatureConfig(seed=seed), name
        )
        announce_registered(entry.name, entry.version, entry.metrics)


@train_app.command("anomaly")
def train_anomaly_command(
    data: DataOption = None,
    subset: SubsetOption = "FD001",
    registry: RegistryOption = None,
    name: str | None = None,
) -> None:
    """Unsupervised PCA anomaly score fitted on healthy history only."""
    from models.train import train_anomaly

    with models_errors_reported():
        entry = train_anomaly(_data(data, "cmapss"), subset, _registry(registry), name=name)
        announce_registered(entry.name, entry.version, entry.metrics)


@train_app.command("ai4i")
def train_ai4i_command(
    data: DataOption = None, registry: RegistryOption = None, seed: int = 0
) -> None:
    """AI4I machine-failure classifier on physical features, exported to ONNX."""
    from models.tabular.gbm import GbmConfig
    from models.train import train_ai4i

    with models_errors_reported():
        entry = train_ai4i(_data(data, "ai4i2020"), _registry(registry), GbmConfig(seed=seed))
        announce_registered(entry.name, entry.version, entry.metrics)


@app.command("list")
def list_models(
    name: str | None = None,
    registry: RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per version")] = False,
) -> None:
    """Registered versions with status and metrics."""
    with models_errors_reported():
        entries = _registry(registry).list(name)
    console = _console()
    for e in entries:
        if as_json:
            console.print(e.model_dump_json(), markup=False, soft_wrap=True)
            continue
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in e.metrics.items())
        console.print(
            f"{e.name} {e.version} {e.kind} {e.status} "
            f"{e.created_at.isoformat(timespec='seconds')} {metrics}",
            markup=False,
            soft_wrap=True,
        )
    if not entries:
        console.print("no model registered", markup=False)


@app.command()
def promote(
    name: str,
    version: str,
    registry: RegistryOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Make VERSION the champion of NAME (the previous champion is retired)."""
    with models_errors_reported():
        reg = _registry(registry)
        entry = reg.promote(name, version)
        if database_url:
            _sync(reg, database_url)
    _console().print(f"{entry.name} {entry.version} is now the champion", markup=False)


@app.command()
def retire(name: str, version: str, registry: RegistryOption = None) -> None:
    """Retire VERSION of NAME."""
    with models_errors_reported():
        entry = _registry(registry).retire(name, version)
    _console().print(f"{entry.name} {entry.version} retired", markup=False)


def _sync(registry: FileRegistry, database_url: str) -> dict[str, int]:
    import psycopg

    from models.registry_db import sync_registry

    with psycopg.connect(database_url) as conn:
        return sync_registry(conn, registry)


@app.command("sync-db")
def sync_db(database_url: str, registry: RegistryOption = None) -> None:
    """Record every registered version in the model_versions table."""
    with models_errors_reported():
        ids = _sync(_registry(registry), database_url)
    _console().print(f"recorded {len(ids)} version(s) in model_versions", markup=False)


@app.command()
def evaluate(
    name: str,
    version: Annotated[
        str | None, typer.Option(help="default: the champion, else the newest")
    ] = None,
    data: DataOption = None,
    registry: RegistryOption = None,
) -> None:
    """Score a registered model with onnxruntime on its data set's test split."""
    from models.evaluate import evaluate_registered

    with models_errors_reported():
        reg = _registry(registry)
        entry = reg.get(name, version) if version else reg.default(name)
        metrics = evaluate_registered(
            entry, reg.manifest(entry.name, entry.version), data, _settings()
        )
    _console().print(f"{entry.name} {entry.version}: " + json.dumps(metrics), markup=False)


@benchmark_app.command("cmapss")
def benchmark_cmapss(
    data: DataOption = None,
    subset: SubsetOption = "FD001",
    seeds: Annotated[int, typer.Option(help="seeds 0..N-1")] = 5,
    epochs: Annotated[int | None, typer.Option(help="override the declared epochs")] = None,
    out: Annotated[Path, typer.Option(help="results (JSON)")] = Path("cmapss-benchmark.json"),
) -> None:
    """Sequence model on a C-MAPSS subset: RMSE and PHM08 score per seed, mean and spread."""
    from dataclasses import replace

    from models.rul.cmapss_benchmark import default_config, run_benchmark
    from models.rul.evaluation import PUBLISHED_FD001

    with models_errors_reported():
        config = default_config(subset)
        if epochs is not None:
            config = replace(config, epochs=epochs)
        result = run_benchmark(_data(data, "cmapss"), subset, list(range(seeds)), config)
        result.write(out)
    s = result.summary()
    console = _console()
    console.print(
        f"{subset}: RMSE {s['rmse_mean']:.2f} ± {s['rmse_std']:.2f} "
        f"(min {s['rmse_min']:.2f}, max {s['rmse_max']:.2f}), "
        f"score {s['score_mean']:.0f} ± {s['score_std']:.0f} over {seeds} seed(s); "
        f"tail-averaged RMSE {s['rmse_tail_mean']:.2f} ± {s['rmse_tail_std']:.2f}, "
        f"score {s['score_tail_mean']:.0f} ± {s['score_tail_std']:.0f}; "
        f"{s['seconds_per_seed']:.0f} s per seed; written to {out}",
        markup=False,
    )
    if subset == "FD001":
        for paper, (rmse, score) in PUBLISHED_FD001.items():
            console.print(f"  published {paper}: RMSE {rmse}, score {score:.0f}", markup=False)


@benchmark_app.command("ai4i")
def benchmark_ai4i(
    data: DataOption = None,
    folds: Annotated[int, typer.Option(min=2, help="stratified cross-validation folds")] = 5,
    out: Annotated[Path, typer.Option(help="results (JSON)")] = Path("ai4i-benchmark.json"),
) -> None:
    """Stratified CV on AI4I 2020: raw columns vs physical features (ROC AUC, PR AUC, F1)."""
    from models.tabular.ai4i_report import run_ai4i_benchmark

    with models_errors_reported():
        summary = run_ai4i_benchmark(_data(data, "ai4i2020"), folds, out)
    for features, figures in summary.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in figures.items())
        _console().print(f"{features}: {shown}", markup=False)


@benchmark_app.command("sim")
def benchmark_sim(
    devices: Annotated[int, typer.Option(min=20, help="devices per fleet")] = 300,
    days: Annotated[int, typer.Option(min=60, help="days of history per fleet")] = 365,
    train_devices: Annotated[
        int | None,
        typer.Option(min=20, help="devices in the training fleet (default: --devices)"),
    ] = None,
    train_days: Annotated[
        int | None, typer.Option(min=60, help="days of training history (default: --days)")
    ] = None,
    interval_s: Annotated[int, typer.Option(help="seconds between readings")] = 600,
    train_seed: int = 1,
    test_seed: int = 2,
    horizon: Annotated[float, typer.Option(help="alert horizon H in days")] = 14.0,
    work: Annotated[Path, typer.Option(help="folder for the generated fleets")] = Path(
        "sim-benchmark"
    ),
    registry: RegistryOption = None,
    promote: Annotated[bool, typer.Option(help="make the new models the champions")] = False,
    out: Annotated[Path, typer.Option(help="results (JSON)")] = Path("sim-benchmark.json"),
) -> None:
    """Simulated fleet: train on one seed, alerts on another (precision, recall, lead time)."""
    from dataclasses import replace

    from models.fleet.benchmark import SimBenchmarkConfig, pooled_line, run_sim_benchmark

    with models_errors_reported():
        config = SimBenchmarkConfig(
            devices, days, interval_s, train_seed, test_seed,
            train_devices=train_devices, train_days=train_days,
        )  # fmt: skip
        config = replace(config, model=replace(config.model, horizon_days=horizon))
        result = run_sim_benchmark(config, work, _registry(registry), promote, say=_say)
        result.write(out)
    _console().print(f"{pooled_line(result)}; written to {out}", markup=False)


def _say(line: str) -> None:
    _console().print(line, markup=False)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="folder for report.md and the PNGs")] = Path(
        "models-report"
    ),
    cmapss_json: Annotated[Path | None, typer.Option(help="a `benchmark cmapss` result")] = None,
    ai4i_json: Annotated[Path | None, typer.Option(help="a `benchmark ai4i` result")] = None,
    sim_json: Annotated[Path | None, typer.Option(help="a `benchmark sim` result")] = None,
) -> None:
    """Markdown report with plots: predicted vs true RUL, PR curve, lead times, per-mode
    confusion."""
    from models.report import write_report

    with models_errors_reported():
        path = write_report(out, cmapss_json, ai4i_json, sim_json)
    _console().print(f"report written to {path}", markup=False)
