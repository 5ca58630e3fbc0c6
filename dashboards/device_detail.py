"""Device detail: one device's sensors with its predicted risk and RUL, events, maintenance
and tickets.

Sensor history reads the device's raw telemetry up to 6 hours, the hourly rollup up to 7 days
and the daily rollup beyond (:mod:`dashboards.ranges`); a metric's values are found through the
device model's catalogue (``device_model_metrics.position``), so the panel works for every
device type without a schema change.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, QueryVariable, SqlTarget
from dashboards.ranges import DEVICE

__all__ = ["device_detail"]


def _catalogue(alias: str, rollup: bool) -> str:
    """Joins from a telemetry or rollup row to its metric through the model's catalogue."""
    position = f" AND dm.position = {alias}.position" if rollup else ""
    return (
        f"JOIN devices d ON d.id = {alias}.device_id\n"
        f"JOIN device_model_metrics dm ON dm.model_id = d.model_id{position}\n"
        "JOIN metrics m ON m.id = dm.metric_id"
    )


SENSOR_HISTORY = f"""
SELECT $__timeGroupAlias(t.time, $__interval), m.name AS metric,
       avg(t.vals[dm.position]) AS value
FROM telemetry t
{_catalogue("t", rollup=False)}
WHERE t.device_id = $device AND m.name IN ($metric) AND $__timeFilter(t.time) AND {DEVICE.raw}
GROUP BY 1, 2
UNION ALL
SELECT $__timeGroupAlias(r.bucket, $__interval), m.name,
       sum(r.total) / nullif(sum(r.n), 0)
FROM telemetry_hourly r
{_catalogue("r", rollup=True)}
WHERE r.device_id = $device AND m.name IN ($metric) AND $__timeFilter(r.bucket) AND {DEVICE.hourly}
GROUP BY 1, 2
UNION ALL
SELECT $__timeGroupAlias(r.bucket, $__interval), m.name,
       sum(r.total) / nullif(sum(r.n), 0)
FROM telemetry_daily r
{_catalogue("r", rollup=True)}
WHERE r.device_id = $device AND m.name IN ($metric) AND $__timeFilter(r.bucket) AND {DEVICE.daily}
GROUP BY 1, 2
ORDER BY 1
"""

RISK = """
SELECT predicted_at AS "time", failure_risk AS "failure risk"
FROM predictions
WHERE device_id = $device AND $__timeFilter(predicted_at)
ORDER BY 1
"""

RUL = """
SELECT predicted_at AS "time", rul_hours AS "RUL"
FROM predictions
WHERE device_id = $device AND $__timeFilter(predicted_at)
ORDER BY 1
"""

LATEST_PREDICTION = """
SELECT p.failure_risk, p.rul_hours, coalesce(p.failure_mode, '') AS failure_mode,
       coalesce(mv.name || ' ' || mv.version, '') AS model, p.predicted_at
FROM predictions p
LEFT JOIN model_versions mv ON mv.id = p.model_version_id
WHERE p.device_id = $device
ORDER BY p.predicted_at DESC
LIMIT 1
"""

DEVICE_FACTS = """
SELECT d.external_id AS device, dm.name AS model, coalesce(a.name, '') AS account,
       coalesce(s.name, '') AS site, d.firmware_version AS firmware, d.online, d.last_seen_at
FROM devices d
JOIN device_models dm ON dm.id = d.model_id
LEFT JOIN accounts a ON a.id = d.account_id
LEFT JOIN sites s ON s.id = d.site_id
WHERE d.id = $device
"""

EVENTS = """
SELECT time, kind, severity, coalesce(code, '') AS code, coalesce(message, '') AS message
FROM device_events
WHERE device_id = $device AND $__timeFilter(time)
ORDER BY time DESC
LIMIT 500
"""

MAINTENANCE = """
SELECT time, kind AS what, coalesce(code, '') AS detail
FROM device_events
WHERE device_id = $device AND $__timeFilter(time)
  AND kind IN ('maintenance_start', 'maintenance_end', 'restart')
UNION ALL
SELECT e.at, 'ticket ' || e.to_status, coalesce(e.note, '')
FROM ticket_events e
JOIN tickets t ON t.id = e.ticket_id
WHERE t.device_id = $device AND $__timeFilter(e.at)
ORDER BY 1 DESC
LIMIT 500
"""

TICKETS = """
SELECT created_at, failure_mode, priority, status, coalesce(outcome, '') AS outcome,
       round(failure_risk::numeric, 2) AS failure_risk, expected_failure_at, resolved_at
FROM tickets
WHERE device_id = $device
ORDER BY created_at DESC
LIMIT 100
"""

DEVICE_VARIABLE = """
SELECT id AS __value, external_id AS __text
FROM devices
WHERE status <> 'decommissioned'
ORDER BY external_id
"""

METRIC_VARIABLE = """
SELECT m.name AS __value
FROM devices d
JOIN device_model_metrics dm ON dm.model_id = d.model_id
JOIN metrics m ON m.id = dm.metric_id
WHERE d.id = $device
ORDER BY dm.position
"""


def device_detail() -> Dashboard:
    return Dashboard(
        uid="fleetcare-device-detail",
        title="fleetcare / Device detail",
        description="One device: sensor history with predicted failure risk and remaining "
        "useful life, events, maintenance and tickets.",
        time_from="now-7d",
        variables=[
            QueryVariable("device", "Device", DEVICE_VARIABLE),
            QueryVariable("metric", "Metrics", METRIC_VARIABLE, multi=True, include_all=True),
        ],
        panels=[
            Panel(
                "Sensor history with predicted risk and RUL",
                "timeseries",
                [
                    SqlTarget(SENSOR_HISTORY, ("time", "metric", "value")),
                    SqlTarget(RISK, ("time", "failure risk")),
                    SqlTarget(RUL, ("time", "RUL")),
                ],
                description="Average of each selected metric per interval, with the failure "
                "risk and the remaining useful life (hours) of the predictions on the right.",
                right_axis=("failure risk", "RUL"),
                overrides_unit=(("failure risk", "percentunit"), ("RUL", "h")),
                min_interval="1m",
                width=24,
                height=10,
            ),
            Panel(
                "Device",
                "table",
                [
                    SqlTarget(
                        DEVICE_FACTS,
                        (
                            "device",
                            "model",
                            "account",
                            "site",
                            "firmware",
                            "online",
                            "last_seen_at",
                        ),
                        format="table",
                    )
                ],
                description="Registration and liveness of the device.",
                width=14,
                height=5,
            ),
            Panel(
                "Latest prediction",
                "stat",
                [
                    SqlTarget(
                        LATEST_PREDICTION,
                        ("failure_risk", "rul_hours", "failure_mode", "model", "predicted_at"),
                        format="table",
                    )
                ],
                description="The device's most recent prediction.",
                overrides_unit=(("failure_risk", "percentunit"), ("rul_hours", "h")),
                width=10,
                height=5,
            ),
            Panel(
                "Events",
                "table",
                [SqlTarget(EVENTS, ("time", "kind", "severity", "code", "message"), "table")],
                description="Events the device reported (trips, restarts, maintenance mode) "
                "and liveness changes.",
                width=8,
                height=9,
            ),
            Panel(
                "Maintenance",
                "table",
                [SqlTarget(MAINTENANCE, ("time", "what", "detail"), "table")],
                description="Maintenance windows and restarts the device reported, and the "
                "lifecycle of its tickets.",
                width=8,
                height=9,
            ),
            Panel(
                "Tickets",
                "table",
                [
                    SqlTarget(
                        TICKETS,
                        (
                            "created_at",
                            "failure_mode",
                            "priority",
                            "status",
                            "outcome",
                            "failure_risk",
                            "expected_failure_at",
                            "resolved_at",
                        ),
                        "table",
                    )
                ],
                description="Field tickets raised for the device.",
                width=8,
                height=9,
            ),
        ],
    )
