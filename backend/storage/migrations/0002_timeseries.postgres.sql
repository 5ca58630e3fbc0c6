-- Time-series tables on plain PostgreSQL: declarative range partitions by time (created
-- ahead by fleetcare_ensure_partitions, dropped for retention), BRIN indexes on time,
-- rollup tables refreshed incrementally from an invalidation log filled by triggers.
-- Same table and column names as the TimescaleDB dialect: callers never branch.

-- Partition width per partitioned table, aligned on a fixed origin (a Monday, UTC).
CREATE TABLE partition_specs (
    parent  text PRIMARY KEY,
    width   interval NOT NULL
);
INSERT INTO partition_specs (parent, width) VALUES
    ('telemetry', INTERVAL '7 days'),
    ('usage_records', INTERVAL '30 days'),
    ('device_events', INTERVAL '30 days'),
    ('device_state_reports', INTERVAL '30 days');

CREATE FUNCTION fleetcare_partition_start(ts timestamptz, width interval)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT date_bin(width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00')
$$;

-- Create every missing partition of parent covering [from_ts, to_ts]; returns how many.
CREATE FUNCTION fleetcare_ensure_partitions(parent text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    w        interval;
    lo       timestamptz;
    name     text;
    created  integer := 0;
BEGIN
    SELECT width INTO w FROM partition_specs WHERE partition_specs.parent = fleetcare_ensure_partitions.parent;
    IF w IS NULL THEN
        RAISE EXCEPTION 'no partition spec for %', parent;
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'empty range % .. %', from_ts, to_ts;
    END IF;
    -- Serialise creators of the same parent (concurrent writers, maintenance job).
    PERFORM pg_advisory_xact_lock(hashtext('fleetcare.partitions.' || parent));
    lo := fleetcare_partition_start(from_ts, w);
    WHILE lo <= to_ts LOOP
        name := format('%s_p%s', parent, to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           name, parent, lo, lo + w);
            created := created + 1;
        END IF;
        lo := lo + w;
    END LOOP;
    RETURN created;
END
$$;

-- Drop partitions of parent that lie wholly before cutoff; returns the names dropped.
CREATE FUNCTION fleetcare_drop_partitions_before(parent text, cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
    upper_bound timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('fleetcare.partitions.' || parent));
    FOR part IN
        SELECT c.oid::regclass::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
    LOOP
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound <= cutoff THEN
            EXECUTE format('DROP TABLE %s', part.name);
            RETURN NEXT part.name;
        END IF;
    END LOOP;
END
$$;

-- One row per reading: vals[i] is the value of the metric at position i of the device
-- model's catalogue (device_model_metrics.position); NULL = not measured. Wide rows won the
-- layout measurement (docs/storage.md): ~10x the COPY rate and ~1/8 of the bytes of one row
-- per value. The unique key is the dedup key (device, seq) plus time, ordered to serve reads.
CREATE TABLE telemetry (
    time       timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    seq        bigint NOT NULL,
    vals       double precision[] NOT NULL CHECK (cardinality(vals) BETWEEN 1 AND 1024)
) PARTITION BY RANGE (time);
CREATE UNIQUE INDEX telemetry_dedup ON telemetry (device_id, time, seq);
CREATE INDEX telemetry_time_brin ON telemetry USING brin (time);

CREATE TABLE usage_records (
    time        timestamptz NOT NULL,
    device_id   bigint NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    value       double precision,
    duration_s  double precision,
    attributes  jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (time);
CREATE UNIQUE INDEX usage_records_dedup ON usage_records (device_id, seq, time);
CREATE INDEX usage_records_device_time ON usage_records (device_id, time DESC);

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
) PARTITION BY RANGE (time);
CREATE UNIQUE INDEX device_events_dedup ON device_events (device_id, seq, time);
CREATE INDEX device_events_device_time ON device_events (device_id, time DESC);

CREATE TABLE device_state_reports (
    time       timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    seq        bigint,
    report     jsonb NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX device_state_reports_device_time ON device_state_reports (device_id, time DESC);

-- Rollups: the same names and columns as the TimescaleDB continuous aggregates.
CREATE TABLE telemetry_hourly (
    bucket     timestamptz NOT NULL,
    device_id  bigint NOT NULL,
    position   smallint NOT NULL,
    n          bigint NOT NULL,
    total      double precision,
    min        double precision,
    max        double precision,
    PRIMARY KEY (device_id, position, bucket)
);
CREATE INDEX telemetry_hourly_bucket ON telemetry_hourly USING brin (bucket);

CREATE TABLE telemetry_daily (LIKE telemetry_hourly INCLUDING ALL);

-- Ranges of source time touched since each rollup's last refresh (like TimescaleDB's
-- invalidation log). Writes to telemetry log them through a statement trigger (COPY and
-- INSERT alike); refreshing the hourly rollup logs the hours it changed for the daily one.
CREATE TABLE rollup_invalidations (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollup    text NOT NULL,
    lowest    timestamptz NOT NULL,
    greatest  timestamptz NOT NULL
);

CREATE FUNCTION fleetcare_log_telemetry_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_invalidations (rollup, lowest, greatest)
    SELECT 'telemetry_hourly', min(time), max(time) FROM new_rows HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER telemetry_invalidate_rollups
    AFTER INSERT ON telemetry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION fleetcare_log_telemetry_write();
