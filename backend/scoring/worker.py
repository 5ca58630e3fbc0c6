"""The scoring worker: one pass finds due devices, scores them in batches, writes predictions.

Everything here is blocking and runs in plain threads: no event loop is involved, so
onnxruntime and the database reads never stall one. A pass scores, for each champion
fleet model in the registry, the devices of its device model that have telemetry of a
completed day (UTC) newer than their last prediction: once a day per device.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from backend.scoring.metrics import ScoringMetrics
from backend.scoring.windows import (
    DueDevice,
    catalogue_models,
    due_devices,
    metric_columns,
    read_windows,
)
from backend.scoring.writer import PredictionRow, write_predictions
from backend.storage.dialect import day_floor
from fleetcare.periodic import every_interval
from models.errors import ModelsError
from models.fleet.scorer import FAMILY, FleetScorer
from models.registry import FileRegistry
from models.registry_db import champion_id, record_version

log = logging.getLogger("fleetcare.scoring")


@dataclass
class ModelPass:
    model: str
    version: str
    device_model: str
    due: int = 0
    scored: int = 0
    skipped: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    def add(self, step: str, seconds: float) -> None:
        self.steps[step] = self.steps.get(step, 0.0) + seconds


@dataclass
class PassReport:
    started_at: datetime
    models: list[ModelPass] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def scored(self) -> int:
        return sum(m.scored for m in self.models)


@dataclass(frozen=True)
class LoadedModel:
    scorer: FleetScorer
    name: str
    version: str
    directory: Path


class ScoringWorker:
    """Scores due devices with the champion fleet models of a registry.

    Args:
        database_url: the fleetcare database.
        registry: the file registry holding the champions (artifacts and manifests).
        batch_size: devices read, scored and written per transaction.
        lookback_days: devices whose newest reading is older are left alone.
        top_contributions: contributing signals kept per prediction.
        day_grace_minutes: a day is scored once it has been over this long, so that the
            rollup of its last minutes has been refreshed (the maintenance pass runs every
            5 minutes).
    """

    def __init__(
        self,
        database_url: str,
        registry: FileRegistry,
        *,
        batch_size: int = 5000,
        lookback_days: int = 35,
        top_contributions: int = 3,
        onnx_threads: int = 1,
        day_grace_minutes: float = 15.0,
        metrics: ScoringMetrics | None = None,
    ) -> None:
        self.database_url = database_url
        self.registry = registry
        self.batch_size = batch_size
        self.lookback = timedelta(days=lookback_days)
        self.top = top_contributions
        self.onnx_threads = onnx_threads
        self.day_grace = timedelta(minutes=day_grace_minutes)
        self.metrics = metrics or ScoringMetrics()
        self._loaded: dict[str, LoadedModel] = {}

    def champions(self) -> list[LoadedModel]:
        """The champion of every fleet model (reloaded when a new one is promoted)."""
        out = []
        for name in self.registry.names():
            entry = self.registry.champion(name)
            if entry is None:
                continue
            manifest = self.registry.manifest(name, entry.version)
            if manifest.extra.get("family") != FAMILY:
                continue
            loaded = self._loaded.get(name)
            if loaded is None or loaded.version != entry.version:
                loaded = LoadedModel(
                    FleetScorer(entry.directory, self.onnx_threads),
                    name,
                    entry.version,
                    entry.directory,
                )
                self._loaded[name] = loaded
                log.info("loaded %s %s for device model %s", name, entry.version,
                         loaded.scorer.device_model)  # fmt: skip
            out.append(loaded)
        return out

    def _version_id(self, conn: psycopg.Connection[Any], model: LoadedModel) -> int:
        entry = self.registry.get(model.name, model.version)
        version_id = champion_id(conn, model.name)
        row = conn.execute(
            "SELECT version FROM model_versions WHERE id = %s", (version_id,)
        ).fetchone()
        if version_id is None or row is None or row[0] != model.version:
            version_id = record_version(conn, entry, model.scorer.manifest)
        return version_id

    def run_once(
        self, now: datetime | None = None, conn: psycopg.Connection[Any] | None = None
    ) -> PassReport:
        """One pass over every champion model; returns what it did.

        ``conn`` (autocommit) is used instead of a connection of the pass's own.
        """
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        report = PassReport(started_at=now)
        models = self.champions()
        if not models:
            log.warning("no champion fleet model in %s: nothing to score", self.registry.root)
        with ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(psycopg.connect(self.database_url, autocommit=True))
            for model in models:
                report.models.append(self._score_model(conn, model, now))
        report.seconds = time.perf_counter() - started
        self.metrics.passes.inc()
        self.metrics.pass_seconds.observe(report.seconds)
        self.metrics.last_pass_devices = float(report.scored)
        return report

    def _score_model(
        self, conn: psycopg.Connection[Any], model: LoadedModel, now: datetime
    ) -> ModelPass:
        scorer = model.scorer
        done = ModelPass(model.name, model.version, scorer.device_model)
        t0 = time.perf_counter()
        version_id = self._version_id(conn, model)
        work: list[tuple[list[DueDevice], dict[int, int]]] = []
        # The models read daily means and were trained on whole days: a day is scored once
        # it is over (UTC), and a device once a day, not at every pass on a partial mean.
        completed = day_floor(now - self.day_grace)
        for model_id in catalogue_models(conn, scorer.device_model):
            due = due_devices(conn, model_id, now - self.lookback, completed)
            if due:
                work.append((due, metric_columns(conn, model_id, scorer.metrics)))
        done.due = sum(len(due) for due, _ in work)
        done.add("find_due", time.perf_counter() - t0)
        horizon = max(1, round(scorer.horizon_hours))
        batches = [
            (due[start : start + self.batch_size], columns)
            for due, columns in work
            for start in range(0, len(due), self.batch_size)
        ]
        for batch, columns in batches:
            b0 = time.perf_counter()
            scored, skipped = self._score_batch(
                conn, scorer, batch, columns, version_id, horizon, now, done
            )
            done.scored += scored
            done.skipped += skipped
            self.metrics.batch_seconds.observe(time.perf_counter() - b0)
            self.metrics.batch_devices.observe(len(batch))
            self.metrics.devices_scored.inc(scored, model.name)
            self.metrics.devices_skipped.inc(skipped, model.name)
            log.info("%s: scored %d/%d due devices", model.name, done.scored + done.skipped,
                     done.due)  # fmt: skip
        done.seconds = time.perf_counter() - t0
        return done

    def _score_batch(
        self,
        conn: psycopg.Connection[Any],
        scorer: FleetScorer,
        batch: list[DueDevice],
        columns: dict[int, int],
        version_id: int,
        horizon: int,
        now: datetime,
        done: ModelPass,
    ) -> tuple[int, int]:
        t0 = time.perf_counter()
        windows = read_windows(conn, batch, scorer.window_days, columns, len(scorer.metrics))
        t1 = time.perf_counter()
        done.add("read_windows", t1 - t0)
        observed: NDArray[np.bool_] = np.asarray(np.isfinite(windows).any(axis=(1, 2)))
        keep = [d for d, ok in zip(batch, observed.tolist(), strict=True) if ok]
        scores = scorer.score(windows[observed], top=self.top, explain=self.top > 0)
        t2 = time.perf_counter()
        done.add("score", t2 - t1)
        rows = []
        for device, score in zip(keep, scores, strict=True):
            last_day = datetime.combine(
                device.newest.astimezone(UTC).date(), datetime.min.time(), UTC
            )
            rows.append(
                PredictionRow(
                    device_id=device.device_id,
                    window_start=last_day - timedelta(days=scorer.window_days - 1),
                    window_end=device.newest,
                    score=score,
                )
            )
        write_predictions(conn, rows, version_id, horizon, now)
        done.add("write", time.perf_counter() - t2)
        return len(rows), len(batch) - len(rows)

    def run(self, interval_s: float, stop: threading.Event, on_pass: Any = None) -> None:
        """Pass after pass, every ``interval_s`` seconds, until ``stop`` is set.

        A failed pass is logged and counted; the next one runs at its time.
        """

        def passed(report: PassReport) -> None:
            log.info("pass: %d device(s) scored in %.2f s", report.scored, report.seconds)
            if on_pass is not None:
                on_pass(report)

        every_interval(
            interval_s,
            stop,
            self.run_once,
            on_pass=passed,
            expected=(psycopg.Error, ModelsError, OSError),
            on_failure=self._failed,
        )

    def _failed(self, exc: Exception) -> None:
        self.metrics.errors.inc(1, type(exc).__name__)
        log.error("scoring pass failed: %s", exc)
