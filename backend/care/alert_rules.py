"""Evaluating the account-level alert rules on a new health score (pure: no database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from backend.care.rule_definitions import (
    BAND_ORDER,
    ChurnRiskRule,
    FailureRiskRule,
    HealthBandRule,
    HealthDropRule,
    RenewalRiskRule,
)
from backend.care.rule_store import StoredRule


@dataclass(frozen=True)
class HealthPoint:
    computed_at: datetime
    score: float
    band: str
    churn_risk: float | None


@dataclass(frozen=True)
class AlertDecision:
    kind: str
    severity: str
    rule_id: int
    reasons: tuple[dict[str, Any], ...]


def _within(history: list[HealthPoint], current: HealthPoint, days: float) -> list[HealthPoint]:
    start = current.computed_at - timedelta(days=days)
    return [point for point in history if start <= point.computed_at < current.computed_at]


def _health_drop(
    rule: HealthDropRule, current: HealthPoint, history: list[HealthPoint]
) -> dict[str, Any] | None:
    window = _within(history, current, rule.window_days)
    if not window:
        return None
    peak = max(window, key=lambda p: p.score)
    drop = peak.score - current.score
    if drop < rule.drop_points:
        return None
    return {
        "rule": "health_drop",
        "text": f"health fell {drop:.1f} points in {rule.window_days:g} days"
        f" ({peak.score:.1f} -> {current.score:.1f}; limit {rule.drop_points:g})",
        "from": peak.score,
        "to": current.score,
    }


def _health_band(
    rule: HealthBandRule, current: HealthPoint, history: list[HealthPoint]
) -> dict[str, Any] | None:
    earlier = [p for p in history if p.computed_at < current.computed_at]
    if not earlier or current.band not in rule.into:
        return None
    previous = max(earlier, key=lambda p: p.computed_at)
    if BAND_ORDER[current.band] <= BAND_ORDER[previous.band]:
        return None
    return {
        "rule": "health_band",
        "text": f"health band crossed from {previous.band} into {current.band}",
        "from": previous.band,
        "to": current.band,
    }


def _churn_risk(
    rule: ChurnRiskRule, current: HealthPoint, history: list[HealthPoint]
) -> dict[str, Any] | None:
    if current.churn_risk is None or current.churn_risk < rule.min_risk:
        return None
    window = [p for p in _within(history, current, rule.window_days) if p.churn_risk is not None]
    if not window:
        return None
    low = min(p.churn_risk for p in window if p.churn_risk is not None)
    rise = current.churn_risk - low
    if rise < rule.rise - 1e-9:
        return None
    return {
        "rule": "churn_risk",
        "text": f"churn risk rose {rise:.2f} in {rule.window_days:g} days"
        f" ({low:.2f} -> {current.churn_risk:.2f})",
        "from": low,
        "to": current.churn_risk,
    }


def _renewal_risk(
    rule: RenewalRiskRule, current: HealthPoint, renewal: date | None
) -> dict[str, Any] | None:
    if renewal is None or current.score > rule.max_score:
        return None
    days = (renewal - current.computed_at.date()).days
    if not 0 <= days <= rule.within_days:
        return None
    return {
        "rule": "renewal_risk",
        "text": f"renewal on {renewal.isoformat()} in {days} days with health"
        f" {current.score:.1f} (at most {rule.max_score:g} is poor)",
        "renewal_date": renewal.isoformat(),
        "score": current.score,
    }


def evaluate_health(
    rules: tuple[StoredRule, ...],
    current: HealthPoint,
    history: list[HealthPoint],
    renewal: date | None,
) -> list[AlertDecision]:
    """Every alert the active rules raise for ``current`` (history: earlier scores)."""
    decisions = []
    for rule in rules:
        definition = rule.definition
        reason: dict[str, Any] | None = None
        if isinstance(definition, HealthDropRule):
            reason = _health_drop(definition, current, history)
        elif isinstance(definition, HealthBandRule):
            reason = _health_band(definition, current, history)
        elif isinstance(definition, ChurnRiskRule):
            reason = _churn_risk(definition, current, history)
        elif isinstance(definition, RenewalRiskRule):
            reason = _renewal_risk(definition, current, renewal)
        if reason is not None and not isinstance(definition, FailureRiskRule):
            reason["rule_version"] = rule.version
            decisions.append(
                AlertDecision(definition.kind, definition.severity, rule.id, (reason,))
            )
    return decisions
