-- Time-series tables on TimescaleDB: hypertables segmented by device for compression,
-- continuous aggregates for hourly and daily rollups, compression and retention policies.
-- Narrow layout (one row per metric value): see docs/storage.md for the measurement.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    seq        bigint NOT NULL,
    metric_id  integer NOT NULL,
    value      double precision
);
SELECT create_hypertable('telemetry', by_range('time', INTERVAL '7 days'));
CREATE UNIQUE INDEX telemetry_dedup ON telemetry (device_id, seq, metric_id, time);
CREATE INDEX telemetry_device_metric_time ON telemetry (device_id, metric_id, time DESC);
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'metric_id, time DESC, seq'
);
SELECT add_compression_policy('telemetry', INTERVAL '14 days');
SELECT add_retention_policy('telemetry', INTERVAL '400 days');

CREATE TABLE usage_records (
    time        timestamptz NOT NULL,
    device_id   bigint NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    value       double precision,
    duration_s  double precision,
    attributes  jsonb NOT NULL DEFAULT '{}'
);
SELECT create_hypertable('usage_records', by_range('time', INTERVAL '30 days'));
CREATE UNIQUE INDEX usage_records_dedup ON usage_records (device_id, seq, time);
CREATE INDEX usage_records_device_time ON usage_records (device_id, time DESC);
SELECT add_retention_policy('usage_records', INTERVAL '730 days');

CREATE TABLE device_events (
    time         timestamptz NOT NULL,
    device_id    bigint NOT NULL,
    seq          bigint,
    kind         text NOT NULL,
    severity     text NOT NULL DEFAULT 'info',
    code         text,
    message      text,
    attributes   jsonb NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL DEFAULT now()
);
SELECT create_hypertable('device_events', by_range('time', INTERVAL '30 days'));
CREATE UNIQUE INDEX device_events_dedup ON device_events (device_id, seq, time);
CREATE INDEX device_events_device_time ON device_events (device_id, time DESC);
SELECT add_retention_policy('device_events', INTERVAL '730 days');

CREATE TABLE device_state_reports (
    time       timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    seq        bigint,
    report     jsonb NOT NULL
);
SELECT create_hypertable('device_state_reports', by_range('time', INTERVAL '30 days'));
CREATE INDEX device_state_reports_device_time ON device_state_reports (device_id, time DESC);
SELECT add_retention_policy('device_state_reports', INTERVAL '730 days');

CREATE MATERIALIZED VIEW telemetry_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       device_id,
       metric_id,
       count(value) AS n,
       sum(value)   AS total,
       min(value)   AS min,
       max(value)   AS max
FROM telemetry
GROUP BY bucket, device_id, metric_id
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       device_id,
       metric_id,
       sum(n)     AS n,
       sum(total) AS total,
       min(min)   AS min,
       max(max)   AS max
FROM telemetry_hourly
GROUP BY time_bucket(INTERVAL '1 day', bucket), device_id, metric_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
SELECT add_continuous_aggregate_policy('telemetry_daily',
    start_offset => INTERVAL '10 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
SELECT add_retention_policy('telemetry_hourly', INTERVAL '1825 days');
SELECT add_retention_policy('telemetry_daily', INTERVAL '1825 days');
