"""Field service: what to fix, where, how soon, and whether the tickets were right.

The latest prediction of each device is read with a ``LATERAL … ORDER BY predicted_at DESC
LIMIT 1`` per device (the index ``predictions_device_time``), so the cost follows the number
of devices, not the history of predictions. ``$region`` filters by the site's region.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, QueryVariable, SqlTarget

__all__ = ["field_service"]

OPEN = "('open', 'assigned', 'in_progress')"

OPEN_BY_PRIORITY_REGION = f"""
SELECT coalesce(region, 'unknown') AS region,
       count(*) FILTER (WHERE priority = 1) AS "P1",
       count(*) FILTER (WHERE priority = 2) AS "P2",
       count(*) FILTER (WHERE priority = 3) AS "P3",
       count(*) FILTER (WHERE priority = 4) AS "P4",
       count(*) FILTER (WHERE priority = 5) AS "P5"
FROM tickets
WHERE status IN {OPEN} AND region IN ($region)
GROUP BY 1
ORDER BY 1
"""

OPEN_TOTALS = f"""
SELECT count(*) AS open,
       count(*) FILTER (WHERE priority <= 2) AS urgent,
       count(*) FILTER (WHERE status = 'open') AS unassigned
FROM tickets
WHERE status IN {OPEN} AND region IN ($region)
"""

LATEST_PREDICTIONS = """
    SELECT d.id AS device_id, d.external_id, a.name AS account, s.name AS site, s.region,
           p.predicted_at, p.failure_risk, p.rul_hours, p.failure_mode,
           p.predicted_at + p.rul_hours * interval '1 hour' AS expected_failure_at
    FROM devices d
    JOIN sites s ON s.id = d.site_id
    LEFT JOIN accounts a ON a.id = d.account_id
    CROSS JOIN LATERAL (
        SELECT predicted_at, failure_risk, rul_hours, failure_mode
        FROM predictions
        WHERE device_id = d.id
        ORDER BY predicted_at DESC
        LIMIT 1
    ) p
    WHERE d.status = 'active' AND s.region IN ($region)
"""

PREDICTED_FAILURES = f"""
WITH latest AS ({LATEST_PREDICTIONS})
SELECT coalesce(failure_mode, 'unspecified') AS failure_mode,
       count(*) FILTER (WHERE expected_failure_at < now() + interval '7 days') AS next_7_days,
       count(*) FILTER (WHERE expected_failure_at < now() + interval '30 days') AS next_30_days
FROM latest
WHERE expected_failure_at < now() + interval '30 days'
GROUP BY 1
ORDER BY next_30_days DESC
"""

PREDICTED_FAILURE_LIST = f"""
WITH latest AS ({LATEST_PREDICTIONS})
SELECT external_id AS device, account, site, region, failure_mode,
       round(failure_risk::numeric, 2) AS failure_risk, expected_failure_at,
       EXISTS (
           SELECT 1 FROM tickets t
           WHERE t.device_id = latest.device_id AND t.status IN {OPEN}
       ) AS ticket_open
FROM latest
WHERE expected_failure_at < now() + interval '30 days'
ORDER BY expected_failure_at
LIMIT 200
"""

LEAD_TIME = """
SELECT $__timeGroupAlias(resolved_at, $__interval),
       avg(extract(epoch FROM expected_failure_at - resolved_at) / 3600)
           FILTER (WHERE outcome IN ('failure_prevented', 'failure_confirmed'))
           AS "lead time before failure",
       avg(extract(epoch FROM resolved_at - created_at) / 3600) AS "time to resolve"
FROM tickets
WHERE $__timeFilter(resolved_at) AND region IN ($region)
GROUP BY 1
ORDER BY 1
"""

OUTCOMES = """
SELECT $__timeGroupAlias(resolved_at, $__interval), outcome AS metric, count(*) AS value
FROM tickets
WHERE $__timeFilter(resolved_at) AND outcome IS NOT NULL AND region IN ($region)
GROUP BY 1, 2
ORDER BY 1
"""

PRECISION = """
SELECT $__timeGroupAlias(resolved_at, $__interval),
       count(*) FILTER (WHERE outcome IN ('failure_prevented', 'failure_confirmed'))::float8
           / nullif(count(*) FILTER (WHERE outcome <> 'auto_closed'), 0) AS precision
FROM tickets
WHERE $__timeFilter(resolved_at) AND outcome IS NOT NULL AND region IN ($region)
GROUP BY 1
ORDER BY 1
"""

REGION_VARIABLE = """
SELECT DISTINCT region AS __value
FROM sites
WHERE region IS NOT NULL
ORDER BY 1
"""


def field_service() -> Dashboard:
    return Dashboard(
        uid="fleetcare-field-service",
        title="fleetcare / Field service",
        description="Open tickets, predicted failures, lead time achieved, outcomes and the "
        "precision of tickets.",
        time_from="now-30d",
        refresh="5m",
        variables=[
            QueryVariable("region", "Region", REGION_VARIABLE, multi=True, include_all=True)
        ],
        panels=[
            Panel(
                "Open tickets by priority and region",
                "barchart",
                [
                    SqlTarget(
                        OPEN_BY_PRIORITY_REGION,
                        ("region", "P1", "P2", "P3", "P4", "P5"),
                        format="table",
                    )
                ],
                description="Tickets open, assigned or in progress, by region and priority "
                "(1 = most urgent).",
                stacked=True,
                width=16,
            ),
            Panel(
                "Open tickets",
                "stat",
                [SqlTarget(OPEN_TOTALS, ("open", "urgent", "unassigned"), format="table")],
                description="Open tickets, those of priority 1-2, and those not yet assigned.",
                width=8,
            ),
            Panel(
                "Predicted failures: next 7 and 30 days",
                "barchart",
                [
                    SqlTarget(
                        PREDICTED_FAILURES,
                        ("failure_mode", "next_7_days", "next_30_days"),
                        format="table",
                    )
                ],
                description="Devices whose latest prediction puts the failure (prediction time "
                "+ remaining useful life) within 7 or 30 days, by failure mode.",
                width=10,
            ),
            Panel(
                "Devices expected to fail within 30 days",
                "table",
                [
                    SqlTarget(
                        PREDICTED_FAILURE_LIST,
                        (
                            "device",
                            "account",
                            "site",
                            "region",
                            "failure_mode",
                            "failure_risk",
                            "expected_failure_at",
                            "ticket_open",
                        ),
                        format="table",
                    )
                ],
                description="The devices behind the bar chart, soonest first, and whether a "
                "ticket is open for them.",
                width=14,
            ),
            Panel(
                "Lead time achieved",
                "timeseries",
                [SqlTarget(LEAD_TIME, ("time", "lead time before failure", "time to resolve"))],
                description="Hours between the fix and the predicted failure (tickets that "
                "prevented or confirmed a failure), and hours from ticket to resolution.",
                unit="h",
                min_interval="1d",
                width=8,
            ),
            Panel(
                "Ticket outcomes",
                "timeseries",
                [SqlTarget(OUTCOMES, ("time", "metric", "value"))],
                description="Resolved tickets by outcome.",
                stacked=True,
                min_interval="1d",
                width=8,
            ),
            Panel(
                "Precision of tickets",
                "timeseries",
                [SqlTarget(PRECISION, ("time", "precision"))],
                description="Share of resolved tickets that found a real failure (prevented or "
                "confirmed) among those with a technician's verdict (auto-closed excluded).",
                unit="percentunit",
                min_interval="1d",
                width=8,
            ),
        ],
    )
