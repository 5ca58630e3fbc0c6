"""Threshold tuning from outcomes: the lowest risk threshold that meets a target precision.

Only resolved tickets of the rule's name count (confirmed or prevented: right; no fault
found: wrong), each at the highest risk it reached. Tickets below the current threshold were
never raised, so a suggestion can only raise the threshold or confirm it; lowering it needs
outcomes the rule never produced. The suggestion is printed, never applied: applying it is an
explicit new rule version (:func:`apply_suggestion`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import BaseModel

from backend.care.errors import RuleError
from backend.care.rule_definitions import FailureRiskRule, RuleSpec
from backend.care.rule_store import StoredRule, create_rule_version, list_rules

POSITIVE = ("failure_confirmed", "failure_prevented")
LABELLED = (*POSITIVE, "no_fault_found")


class ThresholdPoint(BaseModel):
    threshold: float
    tickets: int
    precision: float
    kept_positive_share: float


class ThresholdSuggestion(BaseModel):
    rule: str
    rule_version: int
    current_threshold: float
    target_precision: float
    labelled_tickets: int
    current_precision: float | None
    suggested_threshold: float | None
    expected_precision: float | None
    kept_positive_share: float | None
    curve: list[ThresholdPoint]
    message: str


def _current_rule(conn: psycopg.Connection[Any], name: str) -> StoredRule:
    rules = list_rules(conn, name=name)
    if not rules or not isinstance(rules[0].definition, FailureRiskRule):
        raise RuleError(f"rule {name}", [f"{name} is not a failure_risk (ticket) rule"])
    return rules[0]


def suggest_threshold(
    conn: psycopg.Connection[Any],
    *,
    target_precision: float,
    rule_name: str = "failure-risk",
    min_tickets: int = 5,
) -> ThresholdSuggestion:
    """Suggest a threshold for ``rule_name`` meeting ``target_precision`` on recorded outcomes."""
    if not 0 < target_precision <= 1:
        raise ValueError("target precision must be in (0, 1]")
    rule = _current_rule(conn, rule_name)
    assert isinstance(rule.definition, FailureRiskRule)
    current = rule.definition.risk_threshold
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.failure_risk::float8, t.outcome = ANY(%s) FROM tickets t"
            " JOIN care_rules r ON r.id = t.rule_id"
            " WHERE r.name = %s AND t.outcome = ANY(%s)",
            (list(POSITIVE), rule_name, list(LABELLED)),
        )
        labelled = [(float(risk), bool(good)) for risk, good in cur.fetchall()]
    positives = sum(good for _, good in labelled)
    curve = []
    for threshold in sorted({risk for risk, _ in labelled}):
        kept = [good for risk, good in labelled if risk >= threshold]
        curve.append(
            ThresholdPoint(
                threshold=round(threshold, 4),
                tickets=len(kept),
                precision=round(sum(kept) / len(kept), 4),
                kept_positive_share=round(sum(kept) / positives, 4) if positives else 0.0,
            )
        )
    current_precision = round(positives / len(labelled), 4) if labelled else None
    base = {
        "rule": rule_name,
        "rule_version": rule.version,
        "current_threshold": current,
        "target_precision": target_precision,
        "labelled_tickets": len(labelled),
        "current_precision": current_precision,
        "curve": curve,
    }
    if len(labelled) < min_tickets:
        return ThresholdSuggestion(
            **base,
            suggested_threshold=None,
            expected_precision=None,
            kept_positive_share=None,
            message=f"not enough outcomes: {len(labelled)} resolved tickets, need {min_tickets}",
        )
    meeting = [p for p in curve if p.precision >= target_precision and p.tickets >= min_tickets]
    if not meeting:
        return ThresholdSuggestion(
            **base,
            suggested_threshold=None,
            expected_precision=None,
            kept_positive_share=None,
            message=f"no threshold reaches precision {target_precision:.2f} with at least"
            f" {min_tickets} tickets; improve the model rather than the threshold",
        )
    best = meeting[0]  # the lowest threshold that meets the target keeps the most catches
    suggested = max(current, best.threshold)
    message = (
        f"current threshold {current:.2f} already meets precision {target_precision:.2f}"
        if suggested == current and (current_precision or 0) >= target_precision
        else f"raise the threshold from {current:.2f} to {suggested:.2f}: precision"
        f" {best.precision:.2f} on {best.tickets} tickets, keeping"
        f" {best.kept_positive_share:.0%} of the true needs"
    )
    return ThresholdSuggestion(
        **base,
        suggested_threshold=suggested,
        expected_precision=best.precision,
        kept_positive_share=best.kept_positive_share,
        message=message,
    )


def apply_suggestion(
    conn: psycopg.Connection[Any], suggestion: ThresholdSuggestion, *, actor: str
) -> StoredRule:
    """Store a new version of the rule with the suggested threshold (an explicit act).

    Raises:
        RuleError: nothing to apply, or the rule changed since the suggestion was made.
    """
    if suggestion.suggested_threshold is None:
        raise RuleError(f"rule {suggestion.rule}", ["there is no suggested threshold to apply"])
    rule = _current_rule(conn, suggestion.rule)
    if rule.version != suggestion.rule_version:
        raise RuleError(
            f"rule {suggestion.rule}",
            [
                f"the rule is at version {rule.version} now, the suggestion was for"
                f" {suggestion.rule_version}; tune again"
            ],
        )
    assert isinstance(rule.definition, FailureRiskRule)
    definition = rule.definition.model_copy(
        update={"risk_threshold": suggestion.suggested_threshold}
    )
    return create_rule_version(
        conn,
        RuleSpec(name=rule.name, definition=definition, enabled=rule.enabled),
        actor=actor,
        note=f"tuned for precision {suggestion.target_precision:.2f}",
    )
