"""Edge inference: the backend's ONNX model and manifest, scored at the gateway.

Readings are handed over without blocking (a bounded queue: when full, readings are not
scored and ``inference_skipped`` counts them) to one thread that keeps each device's last
``window.length`` readings of the manifest's features and scores them with
:class:`models.serving.SequenceScorer`, the code the backend serves with, so the same
window gives the same score. When a device's risk reaches ``threshold`` it raises an alert
once (until risk falls below ``threshold - hysteresis``): a log line, a message on the local
alert topic, and a critical ``edge.risk_alert`` event in the priority queue, which is sent
upstream before the backlog once the uplink is back. None of this needs the uplink.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from gateway.clock import now_ms
from gateway.config import InferenceConfig
from gateway.errors import GatewayConfigError
from gateway.metrics import GatewayMetrics
from gateway.store import Store
from models.errors import ManifestError
from models.serving import DeviceHistory, SequenceScore, SequenceScorer

__all__ = ["EdgeAlert", "EdgeInference"]

_log = logging.getLogger("gateway.inference")


@dataclass(frozen=True, slots=True)
class EdgeAlert:
    device: str
    t: int
    score: SequenceScore
    threshold: float

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "device": self.device,
                "t": self.t,
                "risk": self.score.risk,
                "rul": self.score.rul,
                "failure_mode": self.score.failure_mode,
                "model": self.score.model,
                "model_version": self.score.model_version,
                "threshold": self.threshold,
            }
        )


class _DeviceWindow:
    def __init__(self, length: int) -> None:
        self.values: deque[list[float]] = deque(maxlen=length)
        self.settings: deque[list[float]] = deque(maxlen=length)
        self.ages: deque[float] = deque(maxlen=length)
        self.count = 0
        self.alerting = False


def load_scorer(config: InferenceConfig) -> SequenceScorer:
    """The model of ``config``, checked against what the configuration gives it.

    Raises:
        GatewayConfigError: the model cannot be loaded or needs data the configuration lacks.
    """
    try:
        scorer = SequenceScorer(config.model_dir)
    except (ManifestError, OSError, ValueError) as exc:
        raise GatewayConfigError(
            "inference.model_dir", [("inference.model_dir", str(exc))]
        ) from None
    window = scorer.manifest.window
    if window is None:
        raise GatewayConfigError(
            "inference.model_dir",
            [("inference.model_dir", f"model {scorer.manifest.name} is not a sequence model")],
        )
    if window.age_scale is not None and config.age_metric is None:
        raise GatewayConfigError(
            "inference",
            [("inference.age_metric", f"model {scorer.manifest.name} needs the readings' age")],
        )
    return scorer


class EdgeInference:
    """Raises:
    GatewayConfigError: the model cannot be loaded or needs data the configuration lacks.
    """

    def __init__(
        self,
        config: InferenceConfig,
        store: Store,
        metrics: GatewayMetrics,
        publish_local: Callable[[bytes], None] | None = None,
    ) -> None:
        self.scorer = load_scorer(config)
        manifest = self.scorer.manifest
        assert manifest.window is not None
        self.config = config
        self.store = store
        self.metrics = metrics
        self.publish_local = publish_local
        self.features = manifest.feature_names
        self.setting_names = manifest.normalisation.setting_names if manifest.normalisation else ()
        self.length = manifest.window.length
        self.devices = frozenset(config.devices) if config.devices is not None else None
        self.latest: dict[str, SequenceScore] = {}
        """The newest score of each device (read by tests and status)."""
        self.alerts: deque[EdgeAlert] = deque(maxlen=1_000)
        self._windows: dict[str, _DeviceWindow] = {}
        self._queue: queue.Queue[tuple[str, list[tuple[int, dict[str, float | None]]]] | None]
        self._queue = queue.Queue(maxsize=config.queue_size)
        self._thread = threading.Thread(target=self._run, name="gateway-inference", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def submit(self, device: str, readings: list[tuple[int, dict[str, float | None]]]) -> None:
        """Hand readings over for scoring; never blocks."""
        if self.devices is not None and device not in self.devices:
            return
        if not any(f in m for _t, m in readings for f in self.features):
            return
        try:
            self._idle.clear()
            self._queue.put_nowait((device, readings))
        except queue.Full:
            self.metrics.add("inference_skipped", len(readings))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted reading was scored (tests, shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._handle(*job)
            except Exception:  # the thread's top level
                _log.exception("edge inference failed for %s", job[0])
            if self._queue.empty():
                self._idle.set()

    def _handle(self, device: str, readings: list[tuple[int, dict[str, float | None]]]) -> None:
        window = self._windows.get(device)
        if window is None:
            window = self._windows[device] = _DeviceWindow(self.length)
        nan = float("nan")
        for t, metrics in readings:
            window.values.append([_number(metrics.get(f), nan) for f in self.features])
            if self.setting_names:
                window.settings.append([_number(metrics.get(s), 0.0) for s in self.setting_names])
            if self.config.age_metric is not None:
                window.ages.append(_number(metrics.get(self.config.age_metric), 0.0))
            window.count += 1
            if window.count % self.config.score_every == 0:
                self._score(device, window, t)

    def history(self, device: str) -> DeviceHistory:
        """The device's current window as the backend would pass it to the scorer."""
        window = self._windows[device]
        return _history(window, bool(self.setting_names), self.config.age_metric is not None)

    def _score(self, device: str, window: _DeviceWindow, t: int) -> None:
        history = _history(window, bool(self.setting_names), self.config.age_metric is not None)
        score = self.scorer.score([history])[0]
        self.metrics.add("inference_runs")
        self.latest[device] = score
        threshold = self.config.threshold
        if score.risk >= threshold and not window.alerting:
            window.alerting = True
            self._raise(EdgeAlert(device, t, score, threshold))
        elif window.alerting and score.risk < threshold - self.config.hysteresis:
            window.alerting = False
            _log.info("%s: risk back to %.3f", device, score.risk)

    def _raise(self, alert: EdgeAlert) -> None:
        score = alert.score
        self.metrics.add("alerts")
        self.alerts.append(alert)
        _log.warning(
            "ALERT %s: risk %.3f >= %.3f (rul %.1f, %s, model %s %s)", alert.device,
            score.risk, alert.threshold, score.rul, score.failure_mode, score.model,
            score.model_version,
        )  # fmt: skip
        if self.publish_local is not None:
            self.publish_local(alert.to_json())
        self.store.gateway_event(
            "edge.risk_alert",
            severity="critical",
            code="risk_threshold",
            msg=f"{alert.device}: risk {score.risk:.3f} crossed {alert.threshold:.3f} at the edge",
            attrs={
                "device": alert.device,
                "reading_t": alert.t,
                "risk": score.risk,
                "rul": score.rul,
                "failure_mode": score.failure_mode[:256],
                "model": score.model[:256],
                "model_version": score.model_version[:256],
                "threshold": alert.threshold,
                "raised_t": now_ms(),
            },
        )


def _number(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _history(window: _DeviceWindow, settings: bool, ages: bool) -> DeviceHistory:
    return DeviceHistory(
        values=np.array(window.values, dtype=np.float64),
        settings=np.array(window.settings, dtype=np.float64) if settings else None,
        ages=np.array(window.ages, dtype=np.float64) if ages else None,
    )
