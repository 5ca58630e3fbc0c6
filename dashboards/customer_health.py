"""Customer health, for customer success managers: which accounts need attention, and why.

Everything comes from the health scores, segments, alerts and contracts the backend writes.
The latest score of an account is read with ``DISTINCT ON (account_id) … ORDER BY
account_id, computed_at DESC``, which the index ``health_scores_account_time`` serves.
The ``$account`` variable drills down into one account.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, QueryVariable, SqlTarget

__all__ = ["customer_health"]

LATEST_HEALTH = """
    SELECT DISTINCT ON (account_id) account_id, score, band, trend, churn_risk, computed_at
    FROM health_scores
    ORDER BY account_id, computed_at DESC
"""

ACCOUNTS_BY_BAND = f"""
WITH latest AS ({LATEST_HEALTH})
SELECT band, count(*) AS accounts
FROM latest
GROUP BY band
ORDER BY array_position(ARRAY['healthy', 'watch', 'at_risk', 'critical'], band)
"""

BAND_TREND = """
SELECT $__timeGroupAlias(computed_at, $__interval), band AS metric,
       count(DISTINCT account_id) AS value
FROM health_scores
WHERE $__timeFilter(computed_at)
GROUP BY 1, 2
ORDER BY 1
"""

SCORE_AND_CHURN = """
SELECT $__timeGroupAlias(computed_at, $__interval),
       avg(score) AS "average score",
       avg(churn_risk) AS "average churn risk"
FROM health_scores
WHERE $__timeFilter(computed_at)
GROUP BY 1
ORDER BY 1
"""

AT_RISK = f"""
WITH latest AS ({LATEST_HEALTH})
SELECT a.name AS account,
       u.name AS csm,
       l.band,
       round(l.score::numeric, 1) AS score,
       round(l.trend::numeric, 1) AS trend,
       round(l.churn_risk::numeric, 2) AS churn_risk,
       coalesce((
           SELECT string_agg(DISTINCT coalesce(r.value ->> 'text', r.value #>> '{{}}'), '; ')
           FROM alerts al CROSS JOIN LATERAL jsonb_array_elements(al.reasons) AS r (value)
           WHERE al.account_id = a.id AND al.status <> 'resolved'
       ), '') AS reasons
FROM latest l
JOIN accounts a ON a.id = l.account_id
LEFT JOIN users u ON u.id = a.csm_user_id
WHERE l.band IN ('at_risk', 'critical')
   OR EXISTS (SELECT 1 FROM alerts al WHERE al.account_id = a.id AND al.status <> 'resolved')
ORDER BY l.score
LIMIT 100
"""

RENEWALS_AT_RISK = f"""
WITH latest AS ({LATEST_HEALTH})
SELECT a.name AS account,
       c.renewal_date,
       c.annual_value::float8 AS annual_value,
       l.band,
       round(l.churn_risk::numeric, 2) AS churn_risk
FROM contracts c
JOIN accounts a ON a.id = c.account_id
JOIN latest l ON l.account_id = c.account_id
WHERE c.status = 'active'
  AND c.renewal_date BETWEEN current_date - 30 AND current_date + 180
  AND (l.band IN ('watch', 'at_risk', 'critical') OR l.churn_risk >= 0.4)
ORDER BY c.renewal_date
"""

VALUE_AT_RISK = f"""
WITH latest AS ({LATEST_HEALTH})
SELECT coalesce(sum(c.annual_value), 0)::float8 AS value_at_risk,
       count(DISTINCT c.account_id) AS accounts
FROM contracts c
JOIN latest l ON l.account_id = c.account_id
WHERE c.status = 'active'
  AND c.renewal_date BETWEEN current_date AND current_date + 180
  AND (l.band IN ('at_risk', 'critical') OR l.churn_risk >= 0.5)
"""

SEGMENT_MIX = """
WITH latest AS (
    SELECT DISTINCT ON (account_id) account_id, segment
    FROM account_segments
    ORDER BY account_id, computed_at DESC
)
SELECT segment, count(*) AS accounts
FROM latest
GROUP BY segment
ORDER BY accounts DESC
"""

HIGHEST_CHURN = f"""
WITH latest AS ({LATEST_HEALTH})
SELECT a.name AS account, round(l.churn_risk::numeric, 2) AS churn_risk, l.band,
       round(l.trend::numeric, 1) AS trend
FROM latest l
JOIN accounts a ON a.id = l.account_id
ORDER BY l.churn_risk DESC NULLS LAST
LIMIT 15
"""

ACCOUNT_HEALTH = """
SELECT computed_at AS "time", score, churn_risk AS "churn risk"
FROM health_scores
WHERE account_id = $account AND $__timeFilter(computed_at)
ORDER BY 1
"""

ACCOUNT_DEVICES = """
SELECT d.external_id AS device,
       dm.name AS model,
       s.name AS site,
       d.online,
       d.last_seen_at,
       p.failure_risk,
       p.rul_hours,
       p.failure_mode
FROM devices d
JOIN device_models dm ON dm.id = d.model_id
LEFT JOIN sites s ON s.id = d.site_id
LEFT JOIN LATERAL (
    SELECT failure_risk, rul_hours, failure_mode
    FROM predictions
    WHERE device_id = d.id
    ORDER BY predicted_at DESC
    LIMIT 1
) p ON true
WHERE d.account_id = $account
ORDER BY p.failure_risk DESC NULLS LAST, d.external_id
"""

ACCOUNT_CARE = """
SELECT created_at AS "time", 'alert' AS source, kind AS what, severity AS detail, status
FROM alerts
WHERE account_id = $account AND $__timeFilter(created_at)
UNION ALL
SELECT t.created_at, 'ticket', t.failure_mode, 'P' || t.priority, t.status
FROM tickets t
WHERE t.account_id = $account AND $__timeFilter(t.created_at)
ORDER BY 1 DESC
LIMIT 200
"""

ACCOUNT_VARIABLE = """
SELECT id AS __value, name AS __text
FROM accounts
WHERE status <> 'erased'
ORDER BY name
"""


def customer_health() -> Dashboard:
    return Dashboard(
        uid="fleetcare-customer-health",
        title="fleetcare / Customer health",
        description="Health bands and their trend, accounts at risk and why, renewals at risk, "
        "segments and churn risk, with a drill-down into one account.",
        time_from="now-30d",
        refresh="5m",
        variables=[QueryVariable("account", "Account", ACCOUNT_VARIABLE)],
        panels=[
            Panel(
                "Accounts by health band",
                "piechart",
                [SqlTarget(ACCOUNTS_BY_BAND, ("band", "accounts"), format="table")],
                description="Accounts by the band of their latest health score.",
                width=6,
            ),
            Panel(
                "Health bands over time",
                "timeseries",
                [SqlTarget(BAND_TREND, ("time", "metric", "value"))],
                description="Accounts scored in each band per interval.",
                stacked=True,
                min_interval="1d",
                width=10,
            ),
            Panel(
                "Score and churn risk",
                "timeseries",
                [SqlTarget(SCORE_AND_CHURN, ("time", "average score", "average churn risk"))],
                description="Fleet-wide average health score and churn risk.",
                right_axis=("average churn risk",),
                overrides_unit=(("average churn risk", "percentunit"),),
                min_interval="1d",
                width=8,
            ),
            Panel(
                "At-risk accounts",
                "table",
                [
                    SqlTarget(
                        AT_RISK,
                        ("account", "csm", "band", "score", "trend", "churn_risk", "reasons"),
                        format="table",
                    )
                ],
                description="Accounts whose latest band is at risk or critical, or with an open "
                "alert, with the alerts' reasons.",
                width=24,
                height=9,
            ),
            Panel(
                "Renewals at risk",
                "table",
                [
                    SqlTarget(
                        RENEWALS_AT_RISK,
                        ("account", "renewal_date", "annual_value", "band", "churn_risk"),
                        format="table",
                    )
                ],
                description="Active contracts renewing within 180 days whose account is not "
                "healthy or has a churn risk of 40 % or more.",
                width=12,
            ),
            Panel(
                "Annual value at risk",
                "stat",
                [SqlTarget(VALUE_AT_RISK, ("value_at_risk", "accounts"), format="table")],
                description="Contract value renewing within 180 days on accounts at risk.",
                unit="currencyEUR",
                overrides_unit=(("accounts", "short"),),
                width=4,
            ),
            Panel(
                "Segment mix",
                "piechart",
                [SqlTarget(SEGMENT_MIX, ("segment", "accounts"), format="table")],
                description="Accounts by their latest RFM segment.",
                width=8,
            ),
            Panel(
                "Highest churn risk",
                "table",
                [
                    SqlTarget(
                        HIGHEST_CHURN, ("account", "churn_risk", "band", "trend"), format="table"
                    )
                ],
                description="The accounts most likely to churn, by their latest score.",
                width=8,
            ),
            Panel(
                "Account health: $account",
                "timeseries",
                [SqlTarget(ACCOUNT_HEALTH, ("time", "score", "churn risk"))],
                description="Health score and churn risk of the selected account.",
                right_axis=("churn risk",),
                overrides_unit=(("churn risk", "percentunit"),),
                width=16,
            ),
            Panel(
                "Account devices: $account",
                "table",
                [
                    SqlTarget(
                        ACCOUNT_DEVICES,
                        (
                            "device",
                            "model",
                            "site",
                            "online",
                            "last_seen_at",
                            "failure_risk",
                            "rul_hours",
                            "failure_mode",
                        ),
                        format="table",
                    )
                ],
                description="Devices of the selected account with their latest prediction.",
                width=12,
                height=9,
            ),
            Panel(
                "Account alerts and tickets: $account",
                "table",
                [
                    SqlTarget(
                        ACCOUNT_CARE, ("time", "source", "what", "detail", "status"), format="table"
                    )
                ],
                description="CSM alerts and field tickets of the selected account.",
                width=12,
                height=9,
            ),
        ],
    )
