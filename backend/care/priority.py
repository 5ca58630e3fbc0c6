"""Ticket priority, 1 (most urgent) to 5, from risk, account value, contract SLA and health."""

from __future__ import annotations

from dataclasses import dataclass

from backend.care.rule_definitions import PriorityWeights

# Score thresholds for priorities 1..4; below the last one a ticket is priority 5.
_PRIORITY_FLOORS = (0.8, 0.6, 0.4, 0.2)
_UNKNOWN_SLA_FACTOR = 0.3
_UNKNOWN_HEALTH_FACTOR = 0.5
_SLA_REFERENCE_HOURS = 24.0


@dataclass(frozen=True)
class PriorityInputs:
    risk: float
    annual_value: float
    reference_annual_value: float
    sla_hours: int | None
    health_score: float | None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def priority_factors(inputs: PriorityInputs) -> dict[str, float]:
    """Each factor in [0, 1], 1 meaning most urgent."""
    sla = (
        _UNKNOWN_SLA_FACTOR
        if inputs.sla_hours is None
        else _clamp(_SLA_REFERENCE_HOURS / inputs.sla_hours)
    )
    health = (
        _UNKNOWN_HEALTH_FACTOR
        if inputs.health_score is None
        else _clamp(1.0 - inputs.health_score / 100.0)
    )
    return {
        "risk": round(_clamp(inputs.risk), 4),
        "value": round(_clamp(inputs.annual_value / inputs.reference_annual_value), 4),
        "sla": round(sla, 4),
        "health": round(health, 4),
    }


def priority_score(factors: dict[str, float], weights: PriorityWeights) -> float:
    total = weights.risk + weights.value + weights.sla + weights.health
    weighted = (
        weights.risk * factors["risk"]
        + weights.value * factors["value"]
        + weights.sla * factors["sla"]
        + weights.health * factors["health"]
    )
    return weighted / total


def priority_of(score: float) -> int:
    """1 for a score of 0.8 or more, then one step per 0.2, 5 below 0.2."""
    for level, floor in enumerate(_PRIORITY_FLOORS, start=1):
        if score >= floor:
            return level
    return 5
