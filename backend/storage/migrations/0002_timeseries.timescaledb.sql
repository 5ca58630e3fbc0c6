-- Time-series tables on TimescaleDB: hypertables segmented by device for compression,
-- continuous aggregates for hourly and daily rollups, compression and retention policies.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- One row per reading: vals[i] is the value of the metric at position i of the device
-- model's catalogue (device_model_metrics.position); NULL = not measured. Wide rows won the
-- layout measurement (docs/storage.md): ~10x the COPY rate and ~1/8 of the bytes of one row
-- per value. The unique key is the dedup key (device, seq) plus time, ordered to serve reads.
CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    seq        bigint NOT NULL,
    vals       double precision[] NOT NULL CHECK (cardinality(vals) BETWEEN 1 AND 1024)
);
SELECT create_hypertable('telemetry', by_range('time', INTERVAL '7 days'));
CREATE UNIQUE INDEX telemetry_dedup ON telemetry (device_id, time, seq);
ALTER TABLE telemetry SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC, seq'
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

-- Rollups per device and catalogue position; rollup_queries maps positions to metrics.
CREATE MATERIALIZED VIEW telemetry_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 hour', t.time) AS bucket,
       t.device_id,
       u.position::smallint AS position,
       count(u.value) AS n,
       sum(u.value)   AS total,
       min(u.value)   AS min,
       max(u.value)   AS max
FROM telemetry t
CROSS JOIN LATERAL unnest(t.vals) WITH ORDINALITY AS u (value, position)
GROUP BY bucket, t.device_id, u.position
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       device_id,
       position,
       sum(n)     AS n,
       sum(total) AS total,
       min(min)   AS min,
       max(max)   AS max
FROM telemetry_hourly
GROUP BY time_bucket(INTERVAL '1 day', bucket), device_id, position
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');
SELECT add_continuous_aggregate_policy('telemetry_daily',
    start_offset => INTERVAL '10 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour');
SELECT add_retention_policy('telemetry_hourly', INTERVAL '1825 days');
SELECT add_retention_policy('telemetry_daily', INTERVAL '1825 days');
