-- Refresh policies that keep the rollups complete and current on their own.
--
-- start_offset: as far back as ingest accepts readings (FLEETCARE_INGEST_MAX_PAST_S, 30 days
-- by default) and a day more. With the earlier 3 and 10 days, a backlog that a device or
-- gateway delivered after a longer outage was stored but never rolled up, so the scorer
-- and the dashboards never saw it. A refresh recomputes only the buckets that writes
-- invalidated (TimescaleDB's invalidation log), so the wider window adds work only when
-- late readings arrive. If the ingest setting is raised, raise these offsets with it (the
-- `maintain` service follows the setting by itself).
--
-- end_offset of the daily rollup: 1 hour instead of 1 day. A refresh materialises only the
-- buckets that fit whole in its window, so with 1 day a day's bucket appeared two days
-- after it began: the scorer, which reads daily windows, saw the last two days as missing.
SELECT remove_continuous_aggregate_policy('telemetry_hourly');
SELECT add_continuous_aggregate_policy('telemetry_hourly',
    start_offset => INTERVAL '31 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
SELECT remove_continuous_aggregate_policy('telemetry_daily');
SELECT add_continuous_aggregate_policy('telemetry_daily',
    start_offset => INTERVAL '32 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour');
