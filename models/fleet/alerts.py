"""Alert quality on a fleet with known outcomes: precision, recall, lead time per mode.

A device-day alerts for a mode when the model's probability of that mode failing within
the horizon reaches the mode's threshold. An alert is *correct* when the mode fails
within the horizon after it; it is *censored* (neither correct nor false) when a
maintenance visit removed the mode's advanced wear first, or the history ends first.
Precision counts correct among alerts that are not censored. Recall counts failures of
the mode with at least one alert of that mode in the horizon before them; the lead time
of such a failure is the time from the first of those alerts to the failure.

The mode confusion asks which part a care ticket would have named (a prediction's
``failure_mode`` is its most probable mode): for each failure, the most probable mode on
the first day in the horizon before it on which any mode alerted (``no alert`` when none
did).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from models.fleet.labels import Outcomes


class ModeAlertQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: str
    threshold: float | None
    alerts: int
    correct_alerts: int
    censored_alerts: int
    precision: float | None
    failures: int
    detected: int
    recall: float | None
    median_lead_days: float | None
    lead_days: list[float]


NO_ALERT = "no alert"


class ModeConfusion(BaseModel):
    """``counts[i][j]``: failures of ``true_modes[i]`` first alerted as ``alerted_modes[j]``.

    ``alerted_modes`` are the model's wear modes, then ``no alert``; ``true_modes`` are
    every mode that failed in the judged days, random ones included.
    """

    model_config = ConfigDict(frozen=True)

    true_modes: list[str]
    alerted_modes: list[str]
    counts: list[list[int]]
    runner_up: int | None = None
    """Wear failures whose first alert named another mode while their own was the second
    most probable that day (``None`` in results written before it was counted)."""

    def named_right(self) -> tuple[int, int]:
        """``(wear failures whose first alert named their mode, wear failures alerted)``;
        random failures, which no mode of the model stands for, are left out."""
        right = alerted = 0
        for i, mode in enumerate(self.true_modes):
            if mode not in self.alerted_modes:
                continue
            for j, named in enumerate(self.alerted_modes):
                if named == NO_ALERT:
                    continue
                alerted += self.counts[i][j]
                right += self.counts[i][j] if named == mode else 0
        return right, alerted


@dataclass(frozen=True)
class ScoredDays:
    """Probabilities per mode for device-days: ``probability[row, mode]``."""

    device: NDArray[np.int64]
    day: NDArray[np.int64]
    probability: NDArray[np.float32]


def _judged_failures(
    scored: ScoredDays, outcomes: Outcomes, first_day: int
) -> list[tuple[int, float, str]]:
    """Failures of scored devices after the first day that could be scored."""
    seen = set(np.unique(scored.device).tolist())
    return [f for f in outcomes.failures if f[0] in seen and f[1] >= first_day + 1]


def alert_quality(
    scored: ScoredDays,
    outcomes: Outcomes,
    thresholds: dict[str, float],
    horizon_days: float,
    first_day: int,
) -> list[ModeAlertQuality]:
    """Quality of each wear mode's alerts, then one row per random mode (never alerted)."""
    out = []
    judged_failures = _judged_failures(scored, outcomes, first_day)
    for k, mode in enumerate(outcomes.modes):
        threshold = thresholds.get(mode)
        alert = (
            scored.probability[:, k] >= threshold
            if threshold is not None
            else np.zeros(scored.device.size, dtype=bool)
        )
        to_fail = outcomes.to_failure[scored.device, scored.day, k]
        to_repair = outcomes.to_repair[scored.device, scored.day, k]
        remaining = outcomes.remaining[scored.device, scored.day]
        correct = alert & (to_fail <= horizon_days)
        censored = alert & ~correct & ((to_repair <= horizon_days) | (remaining < horizon_days))
        judged = int(alert.sum() - censored.sum())
        alerted_ends: dict[int, list[float]] = {}
        for d, t in zip(scored.device[alert], scored.day[alert], strict=True):
            alerted_ends.setdefault(int(d), []).append(float(t + 1))
        leads = []
        failures = [f for f in judged_failures if f[2] == mode]
        for device, at, _ in failures:
            ends = [e for e in alerted_ends.get(device, []) if at - horizon_days <= e < at]
            if ends:
                leads.append(at - min(ends))
        out.append(
            ModeAlertQuality(
                mode=mode,
                threshold=threshold,
                alerts=int(alert.sum()),
                correct_alerts=int(correct.sum()),
                censored_alerts=int(censored.sum()),
                precision=float(correct.sum() / judged) if judged else None,
                failures=len(failures),
                detected=len(leads),
                recall=len(leads) / len(failures) if failures else None,
                median_lead_days=float(np.median(leads)) if leads else None,
                lead_days=[round(v, 3) for v in leads],
            )
        )
    for mode in sorted({f[2] for f in outcomes.failures} - set(outcomes.modes)):
        n = sum(1 for f in judged_failures if f[2] == mode)
        out.append(
            ModeAlertQuality(
                mode=mode, threshold=None, alerts=0, correct_alerts=0, censored_alerts=0,
                precision=None, failures=n, detected=0, recall=0.0 if n else None,
                median_lead_days=None, lead_days=[],
            )
        )  # fmt: skip
    return out


def mode_confusion(
    scored: ScoredDays,
    outcomes: Outcomes,
    thresholds: dict[str, float],
    horizon_days: float,
    first_day: int,
) -> ModeConfusion:
    """Which mode the first alert before each judged failure named (see the module doc)."""
    alerting = np.zeros(scored.device.size, dtype=bool)
    for k, mode in enumerate(outcomes.modes):
        if mode in thresholds:
            alerting |= scored.probability[:, k] >= thresholds[mode]
    order = np.argsort(-scored.probability, axis=1, kind="stable")
    first_alert: dict[int, list[tuple[float, int]]] = {}
    for row in np.flatnonzero(alerting):
        first_alert.setdefault(int(scored.device[row]), []).append(
            (float(scored.day[row] + 1), int(row))
        )
    failures = _judged_failures(scored, outcomes, first_day)
    true_modes = list(outcomes.modes) + sorted({f[2] for f in failures} - set(outcomes.modes))
    alerted_modes = [*outcomes.modes, NO_ALERT]
    counts = np.zeros((len(true_modes), len(alerted_modes)), dtype=np.int64)
    runner_up = 0
    for device, at, mode in failures:
        ends = [e for e in first_alert.get(device, []) if at - horizon_days <= e[0] < at]
        if not ends:
            counts[true_modes.index(mode), -1] += 1
            continue
        ranked = [outcomes.modes[k] for k in order[min(ends)[1]]]
        counts[true_modes.index(mode), alerted_modes.index(ranked[0])] += 1
        runner_up += int(ranked[0] != mode and ranked[1:2] == [mode])
    return ModeConfusion(
        true_modes=true_modes,
        alerted_modes=alerted_modes,
        counts=counts.tolist(),
        runner_up=runner_up,
    )
