"""Fleet operations: is data flowing, fast and complete, and are the services healthy?

Ingest, lag, broker and database-write health come from the ingest's Prometheus metrics
(``backend/ingest/metrics.py``), scoring latency and predictions made from the scoring
worker's (``backend/scoring/metrics.py``); what landed, dead letters, liveness and webhook
delivery come from the tables the services write.
"""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, PromTarget, SqlTarget
from dashboards.ranges import FLEET

__all__ = ["fleet_operations"]

RATE = "[$__rate_interval]"
# The scoring worker passes every few minutes (FLEETCARE_SCORING_INTERVAL_S, 300 s by
# default): its series move once a pass, so they are read over an hour of passes.
HOUR = "[1h]"


def _quantile(q: float, metric: str, what: str = "", window: str = RATE) -> PromTarget:
    return PromTarget(
        f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{window})))",
        legend=f"{what}p{round(q * 100)}",
    )


READINGS_STORED = f"""
SELECT $__timeGroupAlias(time, $__interval),
       count(vals[1]) / ($__interval_ms / 1000.0) AS "readings/s"
FROM telemetry
WHERE $__timeFilter(time) AND {FLEET.raw}
GROUP BY 1
UNION ALL
SELECT $__timeGroupAlias(bucket, $__interval),
       sum(n) / greatest($__interval_ms / 1000.0, 3600) AS "readings/s"
FROM telemetry_hourly
WHERE position = 1 AND $__timeFilter(bucket) AND {FLEET.hourly}
GROUP BY 1
UNION ALL
SELECT $__timeGroupAlias(bucket, $__interval),
       sum(n) / greatest($__interval_ms / 1000.0, 86400) AS "readings/s"
FROM telemetry_daily
WHERE position = 1 AND $__timeFilter(bucket) AND {FLEET.daily}
GROUP BY 1
ORDER BY 1
"""

DEAD_LETTERS = """
SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) AS value
FROM dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1
"""

DEVICES_ONLINE = """
SELECT count(*) FILTER (WHERE online) AS online,
       count(*) FILTER (WHERE NOT online) AS offline
FROM devices
WHERE status = 'active'
"""

LIVENESS = """
SELECT $__timeGroupAlias(time, $__interval), kind AS metric, count(*) AS value
FROM device_events
WHERE $__timeFilter(time) AND kind IN ('online', 'offline')
GROUP BY 1, 2
ORDER BY 1
"""

DATABASE = """
SELECT numbackends AS connections,
       xact_commit AS commits,
       xact_rollback AS rollbacks,
       deadlocks,
       pg_database_size(current_database()) AS size_bytes
FROM pg_stat_database
WHERE datname = current_database()
"""

WEBHOOK_DELIVERY = """
SELECT $__timeGroupAlias(created_at, $__interval),
       count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS failed,
       count(*) FILTER (WHERE delivered_at IS NULL AND dead_lettered_at IS NULL) AS pending
FROM notification_outbox
WHERE $__timeFilter(created_at) AND channel = 'webhook'
GROUP BY 1
ORDER BY 1
"""

WEBHOOK_LATENCY = """
SELECT $__timeGroupAlias(created_at, $__interval),
       percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM delivered_at - created_at)) AS p95,
       avg(attempts) AS attempts
FROM notification_outbox
WHERE $__timeFilter(created_at) AND delivered_at IS NOT NULL
GROUP BY 1
ORDER BY 1
"""

OUTBOX_BACKLOG = """
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_pending_s
FROM notification_outbox
WHERE delivered_at IS NULL AND dead_lettered_at IS NULL
"""


def fleet_operations() -> Dashboard:
    ingest = "fleetcare_ingest_"
    scoring = "fleetcare_scoring_"
    return Dashboard(
        uid="fleetcare-fleet-ops",
        title="fleetcare / Fleet operations",
        description="Ingest rate and lag, dead letters, device liveness, broker and database "
        "health, scoring latency and webhook delivery.",
        time_from="now-6h",
        panels=[
            Panel(
                "Readings ingested",
                "timeseries",
                [
                    PromTarget(
                        f"sum by (channel) (rate({ingest}readings_written_total{RATE}))",
                        legend="{{channel}}",
                    )
                ],
                description="Entries committed per second by the ingest, per channel.",
                unit="reqps",
            ),
            Panel(
                "Readings stored (database)",
                "timeseries",
                [SqlTarget(READINGS_STORED, ("time", "readings/s"))],
                description="Readings landed in telemetry per second, counted by the first "
                "metric of each model's catalogue: raw rows up to 1 h, the hourly rollup up to "
                "2 days, the daily rollup beyond.",
                unit="reqps",
            ),
            Panel(
                "End-to-end lag",
                "timeseries",
                [_quantile(q, f"{ingest}end_to_end_lag_seconds") for q in (0.5, 0.95, 0.99)],
                description="Device send time to database commit, per message.",
                unit="s",
            ),
            Panel(
                "Dead letters by reason",
                "timeseries",
                [SqlTarget(DEAD_LETTERS, ("time", "metric", "value"))],
                description="Messages refused at ingest (dead_letters), by reason.",
                stacked=True,
            ),
            Panel(
                "Rejections by reason (ingest)",
                "timeseries",
                [
                    PromTarget(
                        f"sum by (reason) (rate({ingest}messages_rejected_total{RATE}))",
                        legend="{{reason}}",
                    )
                ],
                description="Messages dead-lettered per second, as the ingest counts them.",
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Devices online / offline",
                "piechart",
                [SqlTarget(DEVICES_ONLINE, ("online", "offline"), format="table")],
                description="Active devices by their current liveness.",
                width=6,
            ),
            Panel(
                "Online / offline transitions",
                "timeseries",
                [SqlTarget(LIVENESS, ("time", "metric", "value"))],
                description="Devices coming online and going offline (device_events).",
                width=6,
            ),
            Panel(
                "Broker connection",
                "timeseries",
                [
                    PromTarget(
                        f"sum by (protocol) (increase({ingest}mqtt_connects_total{RATE}))",
                        legend="connects {{protocol}}",
                    ),
                    PromTarget(f"rate({ingest}acks_total{RATE})", legend="acks/s"),
                    PromTarget(f"rate({ingest}acks_skipped_total{RATE})", legend="acks skipped/s"),
                ],
                description="MQTT (re)connections of the ingest, and acknowledgements sent or "
                "skipped because the connection was gone.",
            ),
            Panel(
                "Database writes",
                "timeseries",
                [
                    _quantile(0.95, f"{ingest}commit_seconds"),
                    PromTarget(
                        f"sum by (kind) (rate({ingest}db_errors_total{RATE}))",
                        legend="errors {{kind}}",
                    ),
                ],
                description="95th percentile of the ingest's COMMIT latency and database "
                "errors per second.",
                unit="s",
                right_axis=(),
            ),
            Panel(
                "Database",
                "stat",
                [
                    SqlTarget(
                        DATABASE,
                        ("connections", "commits", "rollbacks", "deadlocks", "size_bytes"),
                        format="table",
                    )
                ],
                description="pg_stat_database of the fleetcare database.",
                overrides_unit=(("size_bytes", "bytes"),),
            ),
            Panel(
                "Scoring latency",
                "timeseries",
                [
                    *(_quantile(q, f"{scoring}batch_seconds", "batch ", HOUR) for q in (0.5, 0.95)),
                    _quantile(0.95, f"{scoring}pass_seconds", "pass ", HOUR),
                ],
                description="Seconds per batch of the scoring worker (read the windows, score, "
                "write the predictions), 50th and 95th percentiles, and the 95th percentile of "
                "a whole pass, over the last hour of passes.",
                unit="s",
            ),
            Panel(
                "Predictions made",
                "timeseries",
                [
                    PromTarget(
                        f"sum by (model) (increase({scoring}devices_scored_total{HOUR}))",
                        legend="scored {{model}}",
                    ),
                    PromTarget(
                        f"sum by (model) (increase({scoring}devices_skipped_total{HOUR}))",
                        legend="skipped {{model}}",
                    ),
                    PromTarget(
                        f"sum by (kind) (increase({scoring}errors_total{HOUR}))",
                        legend="failed passes {{kind}}",
                    ),
                ],
                description="Devices scored (predictions written) and skipped (no daily mean "
                "in the window) in the last hour, by model, and failed scoring passes by kind.",
                unit="short",
                width=24,
            ),
            Panel(
                "Webhook delivery",
                "timeseries",
                [SqlTarget(WEBHOOK_DELIVERY, ("time", "delivered", "failed", "pending"))],
                description="Webhook notifications by the time they were queued, and their fate "
                "(notification_outbox).",
                stacked=True,
                width=8,
            ),
            Panel(
                "Webhook delivery latency",
                "timeseries",
                [SqlTarget(WEBHOOK_LATENCY, ("time", "p95", "attempts"))],
                description="95th percentile of queue-to-delivery seconds, and attempts.",
                unit="s",
                right_axis=("attempts",),
                overrides_unit=(("attempts", "short"),),
                width=8,
            ),
            Panel(
                "Outbox backlog",
                "stat",
                [SqlTarget(OUTBOX_BACKLOG, ("pending", "oldest_pending_s"), format="table")],
                description="Notifications not yet delivered nor given up, and the age of the "
                "oldest.",
                overrides_unit=(("oldest_pending_s", "s"),),
                width=8,
            ),
        ],
    )
