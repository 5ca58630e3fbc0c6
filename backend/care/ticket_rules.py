"""Evaluating a failure-risk rule on one prediction (pure: no database).

A prediction *qualifies* when its failure risk within the horizon reaches the threshold or
its remaining useful life is under the lead time needed (the region's parts and technician
lead time plus the rule's margin). It has *receded* when the risk is below the threshold
minus the recede margin and the RUL is back above the lead time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.care.context import PredictionContext
from backend.care.priority import PriorityInputs, priority_factors, priority_of, priority_score
from backend.care.rule_definitions import FailureRiskRule, RepairAction
from backend.care.settings import RegionCapacity


@dataclass(frozen=True)
class TicketAssessment:
    """What one rule says about one prediction."""

    qualifies: bool
    receded: bool
    risk: float
    lead_hours_needed: float
    expected_failure_at: datetime
    repair: RepairAction
    priority: int
    factors: dict[str, float]
    reasons: tuple[str, ...]


def _rul_urgency(rul_hours: float, lead_hours: float) -> float:
    """1 when the RUL is gone, 0.5 at the lead time, 0 at twice the lead time or more."""
    if lead_hours <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - rul_hours / (2.0 * lead_hours)))


def assess_prediction(
    rule: FailureRiskRule,
    ctx: PredictionContext,
    capacity: RegionCapacity,
    *,
    recede_margin: float,
    reference_annual_value: float,
) -> TicketAssessment | None:
    """The rule's verdict, or ``None`` when the rule does not apply (horizon too long, or a
    prediction with neither a risk nor a RUL)."""
    if ctx.horizon_hours > rule.max_horizon_hours:
        return None
    if ctx.failure_risk is None and ctx.rul_hours is None:
        return None
    lead = capacity.lead_hours + rule.rul_margin_hours
    reasons = []
    risk_hit = ctx.failure_risk is not None and ctx.failure_risk >= rule.risk_threshold
    rul_hit = ctx.rul_hours is not None and ctx.rul_hours < lead
    if risk_hit:
        reasons.append(
            f"failure risk {ctx.failure_risk:.2f} within {ctx.horizon_hours} h"
            f" >= threshold {rule.risk_threshold:.2f}"
        )
    if rul_hit:
        reasons.append(f"RUL {ctx.rul_hours:.0f} h < lead time needed {lead:.0f} h")
    risk_low = ctx.failure_risk is None or ctx.failure_risk < rule.risk_threshold - recede_margin
    rul_clear = ctx.rul_hours is None or ctx.rul_hours >= lead
    risk = max(
        ctx.failure_risk or 0.0,
        _rul_urgency(ctx.rul_hours, lead) if ctx.rul_hours is not None else 0.0,
    )
    hours_left = ctx.rul_hours if ctx.rul_hours is not None else float(ctx.horizon_hours)
    factors = priority_factors(
        PriorityInputs(
            risk=risk,
            annual_value=ctx.annual_value,
            reference_annual_value=reference_annual_value,
            sla_hours=ctx.sla_hours,
            health_score=ctx.health_score,
        )
    )
    return TicketAssessment(
        qualifies=risk_hit or rul_hit,
        receded=risk_low and rul_clear,
        risk=round(risk, 4),
        lead_hours_needed=lead,
        expected_failure_at=ctx.predicted_at + timedelta(hours=hours_left),
        repair=rule.repair_for(ctx.failure_mode),
        priority=priority_of(priority_score(factors, rule.weights)),
        factors=factors,
        reasons=tuple(reasons),
    )
