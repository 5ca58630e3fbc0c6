"""The closed loop: what tickets and alerts achieved, from recorded outcomes.

* Precision: (failure confirmed + failure prevented) / resolved tickets, per model version and
  per rule version. Auto-closed and cancelled tickets are counted apart, not as resolved.
* Lead time achieved: for a confirmed failure, the hours from the ticket to the failure (the
  first failure event of the device at or after the ticket, else the resolution time).
* Missed failures: failure events (``device_events`` of the configured kinds) with no ticket
  for their device in the look-back before them; attributed to the model version of the
  device's latest prediction before the failure, and to every ticket rule in force at the
  failure (per rule name, the newest version created at or before the failure, if that
  version is enabled; ``no rule`` when none was). Ticket rules apply to every device, so
  every device kind falls under each of them; alert rules raise no tickets and miss nothing.
* Playbook: per alert kind and CSM action, what the account did next (renewed, expanded,
  churned, or not decided yet), from ``account_outcomes``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import mean, median
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

POSITIVE_OUTCOMES = ("failure_confirmed", "failure_prevented")
RESOLVED_OUTCOMES = (*POSITIVE_OUTCOMES, "no_fault_found")
#: The group of tickets raised by no rule, and of missed failures no ticket rule was in force for.
NO_RULE = "no rule"


class OutcomeStats(BaseModel):
    group: str
    tickets: int
    resolved: int
    failure_confirmed: int
    failure_prevented: int
    no_fault_found: int
    auto_closed: int
    still_open: int
    precision: float | None
    lead_time_hours_median: float | None
    lead_time_hours_mean: float | None
    missed_failures: int | None = None


class PlaybookRow(BaseModel):
    alert_kind: str
    action: str
    alerts: int
    renewed: int
    expanded: int
    churned: int
    undecided: int
    save_rate: float | None


class CareReport(BaseModel):
    since: datetime
    until: datetime
    overall: OutcomeStats
    by_model_version: list[OutcomeStats]
    by_rule: list[OutcomeStats]
    missed_failures: int
    failures: int
    playbook: list[PlaybookRow]


_TICKETS = """
SELECT t.id, t.status, t.outcome, t.created_at, t.resolved_at, t.device_id,
       COALESCE(mv.name || ' ' || mv.version, 'no model') AS model_version,
       COALESCE(r.name || ' v' || r.version, %(no_rule)s) AS rule,
       (SELECT min(e.time) FROM device_events e
         WHERE e.device_id = t.device_id AND e.kind = ANY(%(kinds)s)
           AND e.time >= t.created_at) AS failure_at
FROM tickets t
LEFT JOIN model_versions mv ON mv.id = t.model_version_id
LEFT JOIN care_rules r ON r.id = t.rule_id
WHERE t.created_at >= %(since)s AND t.created_at < %(until)s
"""

_MISSED = """
SELECT e.device_id, e.time,
       COALESCE((SELECT mv.name || ' ' || mv.version FROM predictions p
                 JOIN model_versions mv ON mv.id = p.model_version_id
                 WHERE p.device_id = e.device_id AND p.predicted_at <= e.time
                 ORDER BY p.predicted_at DESC LIMIT 1), 'no model') AS model_version,
       ARRAY(SELECT v.label FROM (
               SELECT DISTINCT ON (r.name) r.name || ' v' || r.version AS label, r.enabled
               FROM care_rules r WHERE r.target = 'ticket' AND r.created_at <= e.time
               ORDER BY r.name, r.version DESC) v
             WHERE v.enabled ORDER BY v.label) AS rules,
       EXISTS (SELECT 1 FROM tickets t WHERE t.device_id = e.device_id
               AND t.created_at <= e.time AND t.created_at >= e.time - %(lookback)s) AS caught
FROM device_events e
WHERE e.kind = ANY(%(kinds)s) AND e.time >= %(since)s AND e.time < %(until)s
"""

_PLAYBOOK = """
SELECT a.kind, COALESCE(a.action, 'none') AS action,
       (SELECT o.outcome FROM account_outcomes o WHERE o.account_id = a.account_id
         AND o.decided_at >= a.created_at ORDER BY o.decided_at LIMIT 1) AS account_outcome
FROM alerts a
WHERE a.created_at >= %(since)s AND a.created_at < %(until)s
"""


def _stats(group: str, rows: list[dict[str, Any]], missed: int | None = None) -> OutcomeStats:
    outcomes = [row["outcome"] for row in rows]
    resolved = sum(o in RESOLVED_OUTCOMES for o in outcomes)
    positive = sum(o in POSITIVE_OUTCOMES for o in outcomes)
    leads = []
    for row in rows:
        if row["outcome"] != "failure_confirmed":
            continue
        failed_at = row["failure_at"] or row["resolved_at"]
        if failed_at is not None:
            leads.append((failed_at - row["created_at"]).total_seconds() / 3600)
    return OutcomeStats(
        group=group,
        tickets=len(rows),
        resolved=resolved,
        failure_confirmed=outcomes.count("failure_confirmed"),
        failure_prevented=outcomes.count("failure_prevented"),
        no_fault_found=outcomes.count("no_fault_found"),
        auto_closed=outcomes.count("auto_closed"),
        still_open=sum(row["status"] in ("open", "assigned", "in_progress") for row in rows),
        precision=round(positive / resolved, 4) if resolved else None,
        lead_time_hours_median=round(median(leads), 2) if leads else None,
        lead_time_hours_mean=round(mean(leads), 2) if leads else None,
        missed_failures=missed,
    )


def care_report(
    conn: psycopg.Connection[Any],
    *,
    since: datetime,
    until: datetime,
    failure_event_kinds: tuple[str, ...] = ("trip", "failure"),
    missed_lookback: timedelta = timedelta(days=30),
) -> CareReport:
    """The closed-loop figures of tickets and alerts created in ``[since, until)``."""
    kinds = list(failure_event_kinds)
    window = {
        "since": since,
        "until": until,
        "kinds": kinds,
        "lookback": missed_lookback,
        "no_rule": NO_RULE,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_TICKETS, window)
        tickets = cur.fetchall()
        cur.execute(_MISSED, window)
        failures = cur.fetchall()
        cur.execute(_PLAYBOOK, window)
        alerts = cur.fetchall()
    missed_by_model: dict[str, int] = {}
    missed_by_rule: dict[str, int] = {}
    for failure in failures:
        if failure["caught"]:
            continue
        key = failure["model_version"]
        missed_by_model[key] = missed_by_model.get(key, 0) + 1
        for rule in failure["rules"] or [NO_RULE]:
            missed_by_rule[rule] = missed_by_rule.get(rule, 0) + 1
    by_model = sorted({row["model_version"] for row in tickets} | set(missed_by_model))
    by_rule = sorted({row["rule"] for row in tickets} | set(missed_by_rule))
    playbook: dict[tuple[str, str], list[str | None]] = {}
    for alert in alerts:
        playbook.setdefault((alert["kind"], alert["action"]), []).append(alert["account_outcome"])
    rows = []
    for (kind, action), results in sorted(playbook.items()):
        saved = results.count("renewed") + results.count("expanded")
        decided = saved + results.count("churned")
        rows.append(
            PlaybookRow(
                alert_kind=kind,
                action=action,
                alerts=len(results),
                renewed=results.count("renewed"),
                expanded=results.count("expanded"),
                churned=results.count("churned"),
                undecided=results.count(None),
                save_rate=round(saved / decided, 4) if decided else None,
            )
        )
    return CareReport(
        since=since,
        until=until,
        overall=_stats("all", tickets, sum(missed_by_model.values())),
        by_model_version=[
            _stats(
                name,
                [row for row in tickets if row["model_version"] == name],
                missed_by_model.get(name, 0),
            )
            for name in by_model
        ],
        by_rule=[
            _stats(
                name,
                [row for row in tickets if row["rule"] == name],
                missed_by_rule.get(name, 0),
            )
            for name in by_rule
        ],
        missed_failures=sum(missed_by_model.values()),
        failures=len(failures),
        playbook=rows,
    )
