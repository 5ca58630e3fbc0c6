"""The care engine: reads new predictions and health scores and acts on them.

``process_prediction`` and ``process_health_score`` evaluate one row in one transaction; a
scoring worker may call them right after it writes a prediction, any number of workers at
once. ``run_once`` walks the rows written since its cursor (``care_cursors``, locked for the
pass, so several engines never evaluate the same rows twice), closes quiet incidents and
returns what it did.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from backend.care.alert_rules import HealthPoint, evaluate_health
from backend.care.alerts import AlertRequest, raise_alert
from backend.care.audit import write_audit
from backend.care.clock import Clock, system_clock
from backend.care.context import PredictionContext, load_prediction_context
from backend.care.needs import account_need_key
from backend.care.rule_definitions import FailureRiskRule, FleetRiskRule
from backend.care.rule_store import RuleSet, StoredRule, active_rules
from backend.care.settings import CareSettings
from backend.care.storm import StormLimits, close_quiet_incidents
from backend.care.ticket_rules import TicketAssessment, assess_prediction
from backend.care.tickets import EngineParams, auto_close_ticket, raise_ticket

log = logging.getLogger("fleetcare.care")
ENGINE_ACTOR = "care-engine"


@dataclass
class PassReport:
    """What one engine pass did, counted by outcome."""

    predictions: int = 0
    health_scores: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    incidents_closed: int = 0

    def merge(self, outcome: str) -> None:
        self.outcomes[outcome] += 1


class CareEngine:
    """Evaluates rules with one settings object, rule set and clock."""

    def __init__(self, settings: CareSettings, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self.params = EngineParams(
            cooldown_hours=settings.cooldown_hours,
            escalate_risk_delta=settings.escalate_risk_delta,
            email_alerts=settings.email_alerts,
            storm=StormLimits.from_settings(settings),
        )

    # -- predictions --------------------------------------------------------------------

    def process_prediction(
        self, conn: psycopg.Connection[Any], prediction_id: int, rules: RuleSet | None = None
    ) -> list[str]:
        """Evaluate one prediction in its own transaction (a savepoint when the caller has one
        open); returns the outcomes."""
        with conn.transaction():
            ctx = load_prediction_context(conn, prediction_id)
            return self._prediction_outcomes(conn, ctx, rules or active_rules(conn))

    def _prediction_outcomes(
        self, conn: psycopg.Connection[Any], ctx: PredictionContext, rules: RuleSet
    ) -> list[str]:
        at = self.clock()
        outcomes: list[str] = []
        assessed = self._assess(ctx, rules)
        qualifying = [(rule, a) for rule, a in assessed if a.qualifies]
        if qualifying:
            rule, assessment = max(qualifying, key=lambda item: (-item[1].priority, item[1].risk))
            result = raise_ticket(conn, ctx, assessment, rule, at, self.params)
            outcomes.append(f"ticket_{result.outcome}")
            outcomes.extend(self._fleet_risk(conn, ctx, rules, at))
        elif assessed and all(a.receded for _, a in assessed):
            result = auto_close_ticket(
                conn,
                ctx,
                assessed[0][1],
                at,
                confirmed=lambda: self._receded_before(
                    conn, ctx, rules, self.settings.recede_predictions - 1
                ),
            )
            outcomes.append(f"ticket_{result.outcome}")
        else:
            outcomes.append("ticket_nothing")
        return outcomes

    def _receded_before(
        self, conn: psycopg.Connection[Any], ctx: PredictionContext, rules: RuleSet, count: int
    ) -> bool:
        """Whether the ``count`` predictions of the device before ``ctx`` (by window end)
        all receded under every ticket rule that applies to them."""
        if count <= 0:
            return True
        rows = conn.execute(
            "SELECT p.id FROM predictions p, predictions this"
            " WHERE this.id = %(id)s AND p.device_id = this.device_id AND p.id <> this.id"
            " AND (p.window_end, p.id) < (this.window_end, this.id)"
            " ORDER BY p.window_end DESC, p.id DESC LIMIT %(n)s",
            {"id": ctx.prediction_id, "n": count},
        ).fetchall()
        if len(rows) < count:
            return False
        return all(
            assessment.receded
            for (prediction_id,) in rows
            for _, assessment in self._assess(
                load_prediction_context(conn, int(prediction_id)), rules
            )
        )

    def _assess(
        self, ctx: PredictionContext, rules: RuleSet
    ) -> list[tuple[StoredRule, TicketAssessment]]:
        """Every ticket rule's verdict on ``ctx``, for the rules that apply to it."""
        capacity = self.settings.capacity_for(ctx.region)
        assessed = []
        for rule in rules.ticket_rules:
            assert isinstance(rule.definition, FailureRiskRule)
            assessment = assess_prediction(
                rule.definition,
                ctx,
                capacity,
                recede_margin=self.settings.recede_margin,
                reference_annual_value=self.settings.reference_annual_value,
            )
            if assessment is not None:
                assessed.append((rule, assessment))
        return assessed

    def _fleet_risk(
        self, conn: psycopg.Connection[Any], ctx: PredictionContext, rules: RuleSet, at: datetime
    ) -> list[str]:
        if ctx.account_id is None:
            return []
        fleet_rules = rules.alert_rules_of("fleet_risk")
        if not fleet_rules:
            return []
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(DISTINCT device_id) FROM ("
                " SELECT device_id FROM tickets WHERE account_id = %(a)s"
                "   AND status IN ('open', 'assigned', 'in_progress')"
                " UNION SELECT m.device_id FROM incident_members m"
                "   JOIN incidents i ON i.id = m.incident_id"
                "   JOIN devices d ON d.id = m.device_id"
                "   WHERE i.closed_at IS NULL AND d.account_id = %(a)s) at_risk",
                {"a": ctx.account_id},
            )
            row = cur.fetchone()
        at_risk = 0 if row is None else int(row[0])
        outcomes = []
        for rule in fleet_rules:
            definition = rule.definition
            assert isinstance(definition, FleetRiskRule)
            if at_risk < definition.min_devices:
                continue
            result = raise_alert(
                conn,
                AlertRequest(
                    account_id=ctx.account_id,
                    kind="fleet_risk",
                    severity=definition.severity,
                    reasons=(
                        {
                            "rule": "fleet_risk",
                            "rule_version": rule.version,
                            "text": f"{at_risk} devices at risk of failure (the rule alerts"
                            f" from {definition.min_devices})",
                            "devices_at_risk": at_risk,
                        },
                    ),
                    rule_id=rule.id,
                    dedup_key=account_need_key(ctx.account_id, "fleet_risk"),
                ),
                at=at,
                cooldown_hours=self.params.cooldown_hours,
                email_alerts=self.params.email_alerts,
            )
            outcomes.append(f"alert_{result.outcome}")
        return outcomes

    # -- health scores ------------------------------------------------------------------

    def process_health_score(
        self, conn: psycopg.Connection[Any], health_id: int, rules: RuleSet | None = None
    ) -> list[str]:
        """Evaluate the alert rules on one health score in its own transaction."""
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            rules = rules or active_rules(conn)
            health_rules = tuple(r for r in rules.alert_rules if r.definition.kind != "fleet_risk")
            cur.execute(
                "SELECT id, account_id, computed_at, score, band, churn_risk"
                " FROM health_scores WHERE id = %s",
                (health_id,),
            )
            row = cur.fetchone()
            if row is None or not health_rules:
                return []
            current = HealthPoint(row["computed_at"], row["score"], row["band"], row["churn_risk"])
            longest = max(
                (float(getattr(r.definition, "window_days", 0.0)) for r in health_rules),
                default=0.0,
            )
            cur.execute(
                "(SELECT computed_at, score, band, churn_risk FROM health_scores"
                "  WHERE account_id = %(a)s AND computed_at < %(t)s AND computed_at >= %(s)s)"
                " UNION"
                " (SELECT computed_at, score, band, churn_risk FROM health_scores"
                "  WHERE account_id = %(a)s AND computed_at < %(t)s"
                "  ORDER BY computed_at DESC LIMIT 1)",
                {
                    "a": row["account_id"],
                    "t": row["computed_at"],
                    "s": row["computed_at"] - timedelta(days=longest),
                },
            )
            history = [HealthPoint(**point) for point in cur.fetchall()]
            cur.execute(
                "SELECT min(COALESCE(renewal_date, end_date)) AS renewal FROM contracts"
                " WHERE account_id = %s AND status IN ('active', 'renewed', 'expanded')"
                " AND COALESCE(renewal_date, end_date) >= %s",
                (row["account_id"], row["computed_at"].date()),
            )
            renewal_row = cur.fetchone()
            renewal: date | None = renewal_row["renewal"] if renewal_row else None
            outcomes = []
            at = self.clock()
            for decision in evaluate_health(health_rules, current, history, renewal):
                result = raise_alert(
                    conn,
                    AlertRequest(
                        account_id=row["account_id"],
                        kind=decision.kind,
                        severity=decision.severity,
                        reasons=decision.reasons,
                        rule_id=decision.rule_id,
                        dedup_key=account_need_key(row["account_id"], decision.kind),
                    ),
                    at=at,
                    cooldown_hours=self.params.cooldown_hours,
                    email_alerts=self.params.email_alerts,
                )
                outcomes.append(f"alert_{result.outcome}")
            return outcomes

    # -- passes -------------------------------------------------------------------------

    def run_once(self, conn: psycopg.Connection[Any]) -> PassReport:
        """One pass over the rows written since the last pass (in batches), then housekeeping."""
        report = PassReport()
        rules = active_rules(conn)
        conn.commit()
        for stream in ("predictions", "health_scores"):
            while self._batch(conn, stream, rules, report):
                pass
        report.incidents_closed = self.housekeeping(conn)
        return report

    def housekeeping(self, conn: psycopg.Connection[Any]) -> int:
        """Close the incidents that went quiet; returns how many."""
        with conn.transaction():
            closed = close_quiet_incidents(conn, self.clock(), self.settings.incident_quiet_hours)
        conn.commit()
        return len(closed)

    def _batch(
        self, conn: psycopg.Connection[Any], stream: str, rules: RuleSet, report: PassReport
    ) -> bool:
        table = "predictions" if stream == "predictions" else "health_scores"
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT last_id FROM care_cursors WHERE stream = %s FOR UPDATE", (stream,)
                )
                row = cur.fetchone()
                last_id = 0 if row is None else int(row[0])
                cur.execute(
                    f"SELECT id FROM {table} WHERE id > %s ORDER BY id LIMIT %s",
                    (last_id, self.settings.batch_size),
                )
                ids = [int(r[0]) for r in cur.fetchall()]
            for row_id in ids:
                try:
                    if stream == "predictions":
                        outcomes = self.process_prediction(conn, row_id, rules)
                        report.predictions += 1
                    else:
                        outcomes = self.process_health_score(conn, row_id, rules)
                        report.health_scores += 1
                except (psycopg.DataError, psycopg.IntegrityError, ValueError) as exc:
                    report.failed += 1
                    log.error("care: %s %d could not be evaluated: %s", table, row_id, exc)
                    write_audit(
                        conn,
                        ENGINE_ACTOR,
                        "care.evaluation_failed",
                        table,
                        row_id,
                        {"error": str(exc)},
                    )
                    continue
                for outcome in outcomes:
                    report.merge(outcome)
            if ids:
                conn.execute(
                    "UPDATE care_cursors SET last_id = %s, updated_at = now() WHERE stream = %s",
                    (ids[-1], stream),
                )
        conn.commit()
        return len(ids) == self.settings.batch_size
