-- fleetcare core schema: customers and their identities in source systems, users, sites,
-- device models and their metric catalogue, devices and twins, predictions, health, care
-- (needs, tickets, alerts, incidents, rules), notifications, dead letters, model versions,
-- audit. Time-series tables are created per dialect in 0002.

CREATE TABLE users (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    email        text UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'csm', 'field', 'viewer', 'provisioner')),
    region       text,
    team         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);

CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix        text NOT NULL UNIQUE,
    key_hash      text NOT NULL,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- One row per real customer: the unique customer id across CRM, ERP and service desk.
CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_key  text NOT NULL UNIQUE,
    name          text NOT NULL,
    domain        text,
    industry      text,
    size_band     text,
    region        text,
    country       text,
    address       text,
    csm_user_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    segment       text,
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('prospect', 'active', 'churned', 'erased')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    erased_at     timestamptz
);
CREATE INDEX accounts_csm ON accounts (csm_user_id);

-- Raw records as imported from each source system, kept for resolution and quality reports.
CREATE TABLE source_records (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL CHECK (source IN ('crm', 'erp', 'service')),
    source_id     text NOT NULL,
    payload       jsonb NOT NULL,
    import_batch  text,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_id)
);

-- Identity decisions: which account a source record belongs to. Decisions are never
-- overwritten: a new decision supersedes the current one, so every decision is reversible.
CREATE TABLE account_identities (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text NOT NULL CHECK (source IN ('crm', 'erp', 'service')),
    source_id      text NOT NULL,
    account_id     bigint REFERENCES accounts (id) ON DELETE CASCADE,
    method         text NOT NULL CHECK (method IN ('exact', 'fuzzy', 'manual')),
    confidence     real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    status         text NOT NULL CHECK (status IN ('matched', 'review', 'rejected')),
    evidence       jsonb NOT NULL DEFAULT '{}',
    decided_by     text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    superseded_at  timestamptz
);
CREATE UNIQUE INDEX account_identities_current
    ON account_identities (source, source_id) WHERE superseded_at IS NULL;
CREATE INDEX account_identities_account ON account_identities (account_id);

CREATE TABLE data_quality_snapshots (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    report    jsonb NOT NULL
);

CREATE TABLE contracts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source_ref    text,
    annual_value  numeric(14, 2) NOT NULL CHECK (annual_value >= 0),
    currency      char(3) NOT NULL DEFAULT 'EUR',
    start_date    date NOT NULL,
    end_date      date NOT NULL,
    renewal_date  date,
    sla_hours     integer CHECK (sla_hours > 0),
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'renewed', 'expanded', 'churned', 'ended')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date >= start_date)
);
CREATE INDEX contracts_account ON contracts (account_id);

CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(14, 2) NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('purchase', 'service', 'parts', 'renewal', 'return')),
    source_ref  text
);
CREATE INDEX orders_account_time ON orders (account_id, ordered_at);

CREATE TABLE account_outcomes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contract_id  bigint REFERENCES contracts (id) ON DELETE SET NULL,
    decided_at   timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('renewed', 'churned', 'expanded')),
    notes        text
);
CREATE INDEX account_outcomes_account ON account_outcomes (account_id, decided_at);

CREATE TABLE sites (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    region      text,
    address     text,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_account ON sites (account_id);

-- Metric catalogue: metrics are rows, so a new device type needs no schema change.
CREATE TABLE metrics (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Same pattern as metric names on the wire (device_sdk.wire.payloads.NAME_PATTERN).
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$'),
    unit         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT ''
);

CREATE TABLE device_models (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    kind          text NOT NULL,
    manufacturer  text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A model's catalogue: which metrics it reports and at which position of a reading's
-- value array (telemetry.vals[position]). Positions are append-only: a metric added later
-- takes the next position, and a position is never reused, so old readings keep their meaning.
CREATE TABLE device_model_metrics (
    model_id   integer NOT NULL REFERENCES device_models (id) ON DELETE CASCADE,
    metric_id  integer NOT NULL REFERENCES metrics (id),
    position   smallint NOT NULL CHECK (position BETWEEN 1 AND 1024),
    min_value  double precision,
    max_value  double precision,
    required   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (model_id, metric_id),
    UNIQUE (model_id, position),
    CHECK (min_value IS NULL OR max_value IS NULL OR min_value <= max_value)
);

CREATE TABLE devices (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id           text NOT NULL UNIQUE CHECK (external_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    model_id              integer NOT NULL REFERENCES device_models (id),
    account_id            bigint REFERENCES accounts (id) ON DELETE SET NULL,
    site_id               bigint REFERENCES sites (id) ON DELETE SET NULL,
    gateway_id            bigint REFERENCES devices (id) ON DELETE SET NULL,
    serial_number         text,
    firmware_version      text,
    status                text NOT NULL DEFAULT 'provisioned'
                          CHECK (status IN ('provisioned', 'active', 'decommissioned')),
    credential_hash       text,
    credential_issued_at  timestamptz,
    installed_at          timestamptz,
    decommissioned_at     timestamptz,
    last_seen_at          timestamptz,
    online                boolean NOT NULL DEFAULT false,
    clock_offset_s        double precision,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_account ON devices (account_id);
CREATE INDEX devices_site ON devices (site_id);

-- Device twin: desired configuration set by the backend, reported by the device.
CREATE TABLE device_twins (
    device_id         bigint PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    desired           jsonb NOT NULL DEFAULT '{}',
    desired_version   integer NOT NULL DEFAULT 0,
    desired_at        timestamptz,
    reported          jsonb NOT NULL DEFAULT '{}',
    reported_version  integer NOT NULL DEFAULT 0,
    reported_at       timestamptz
);

CREATE TABLE model_versions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL,
    version          text NOT NULL,
    kind             text NOT NULL,
    status           text NOT NULL DEFAULT 'candidate'
                     CHECK (status IN ('candidate', 'champion', 'retired')),
    manifest         jsonb NOT NULL,
    metrics          jsonb NOT NULL DEFAULT '{}',
    artifact_uri     text NOT NULL,
    artifact_sha256  text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    promoted_at      timestamptz,
    retired_at       timestamptz,
    UNIQUE (name, version)
);
CREATE UNIQUE INDEX model_versions_one_champion ON model_versions (name) WHERE status = 'champion';

CREATE TABLE predictions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    predicted_at        timestamptz NOT NULL,
    device_id           bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    model_version_id    bigint REFERENCES model_versions (id) ON DELETE SET NULL,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    horizon_hours       integer NOT NULL CHECK (horizon_hours > 0),
    failure_risk        real CHECK (failure_risk BETWEEN 0 AND 1),
    rul_hours           real CHECK (rul_hours >= 0),
    failure_mode        text,
    mode_probabilities  jsonb NOT NULL DEFAULT '{}',
    contributions       jsonb NOT NULL DEFAULT '[]',
    anomaly_score       real
);
CREATE INDEX predictions_device_time ON predictions (device_id, predicted_at DESC);

CREATE TABLE health_scores (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    computed_at      timestamptz NOT NULL,
    score            real NOT NULL CHECK (score BETWEEN 0 AND 100),
    band             text NOT NULL CHECK (band IN ('healthy', 'watch', 'at_risk', 'critical')),
    trend            real,
    churn_risk       real CHECK (churn_risk BETWEEN 0 AND 1),
    components       jsonb NOT NULL,
    inputs           jsonb NOT NULL,
    weights_version  text NOT NULL
);
CREATE INDEX health_scores_account_time ON health_scores (account_id, computed_at DESC);

CREATE TABLE account_segments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    computed_at  timestamptz NOT NULL,
    segment      text NOT NULL,
    features     jsonb NOT NULL
);
CREATE INDEX account_segments_account_time ON account_segments (account_id, computed_at DESC);

CREATE TABLE care_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    target      text NOT NULL CHECK (target IN ('ticket', 'alert')),
    definition  jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

CREATE TABLE incidents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('site', 'account')),
    account_id  bigint REFERENCES accounts (id) ON DELETE CASCADE,
    site_id     bigint REFERENCES sites (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    summary     text NOT NULL,
    member_count integer NOT NULL DEFAULT 0,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz
);

-- A predicted service need links the field ticket and the CSM alert it caused.
CREATE TABLE service_needs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key     text NOT NULL,
    device_id     bigint REFERENCES devices (id) ON DELETE CASCADE,
    account_id    bigint REFERENCES accounts (id) ON DELETE CASCADE,
    failure_mode  text,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    closed_at     timestamptz,
    outcome       text
);
CREATE UNIQUE INDEX service_needs_open_key ON service_needs (dedup_key) WHERE status = 'open';

CREATE TABLE tickets (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    need_id              bigint REFERENCES service_needs (id) ON DELETE SET NULL,
    incident_id          bigint REFERENCES incidents (id) ON DELETE SET NULL,
    dedup_key            text NOT NULL,
    device_id            bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    account_id           bigint REFERENCES accounts (id) ON DELETE CASCADE,
    site_id              bigint REFERENCES sites (id) ON DELETE SET NULL,
    region               text,
    team                 text,
    failure_mode         text NOT NULL,
    failure_risk         real NOT NULL CHECK (failure_risk BETWEEN 0 AND 1),
    expected_failure_at  timestamptz,
    recommended_action   text,
    parts                jsonb NOT NULL DEFAULT '[]',
    priority             integer NOT NULL CHECK (priority BETWEEN 1 AND 5),
    status               text NOT NULL DEFAULT 'open'
                         CHECK (status IN ('open', 'assigned', 'in_progress', 'resolved', 'closed')),
    outcome              text CHECK (outcome IN ('failure_confirmed', 'failure_prevented',
                                                 'no_fault_found', 'auto_closed')),
    outcome_notes        text,
    prediction_id        bigint REFERENCES predictions (id) ON DELETE SET NULL,
    model_version_id     bigint REFERENCES model_versions (id) ON DELETE SET NULL,
    rule_id              bigint REFERENCES care_rules (id) ON DELETE SET NULL,
    assigned_to          bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    resolved_at          timestamptz
);
-- One open ticket per device and failure mode, whatever the number of scoring workers.
CREATE UNIQUE INDEX tickets_one_open ON tickets (device_id, failure_mode)
    WHERE status IN ('open', 'assigned', 'in_progress');
CREATE INDEX tickets_region_status ON tickets (region, status);

CREATE TABLE ticket_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    note         text
);

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    need_id          bigint REFERENCES service_needs (id) ON DELETE SET NULL,
    dedup_key        text NOT NULL,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csm_user_id      bigint REFERENCES users (id) ON DELETE SET NULL,
    kind             text NOT NULL CHECK (kind IN ('health_drop', 'health_band', 'churn_risk',
                                                   'fleet_risk', 'renewal_risk')),
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'acknowledged', 'resolved')),
    reasons          jsonb NOT NULL DEFAULT '[]',
    rule_id          bigint REFERENCES care_rules (id) ON DELETE SET NULL,
    outcome          text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    resolved_at      timestamptz
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (account_id, kind) WHERE status <> 'resolved';

CREATE TABLE webhooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    secret      text NOT NULL,
    events      text[] NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the same transaction as the ticket or alert.
CREATE TABLE notification_outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    channel           text NOT NULL CHECK (channel IN ('webhook', 'email')),
    webhook_id        bigint REFERENCES webhooks (id) ON DELETE CASCADE,
    event             text NOT NULL,
    payload           jsonb NOT NULL,
    idempotency_key   text NOT NULL UNIQUE,
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    dead_lettered_at  timestamptz,
    last_error        text
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;

-- Input that failed validation at ingest: kept whole, never in the telemetry tables.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    payload         bytea NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL DEFAULT '',
    device_ref      text,
    replayed_at     timestamptz,
    replay_result   text
);
CREATE INDEX dead_letters_reason_time ON dead_letters (reason, received_at);

CREATE TABLE audit_log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL,
    subject_kind  text NOT NULL,
    subject_id    text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}'
);

-- Storage settings that maintenance jobs read (retention, partition width).
CREATE TABLE storage_settings (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
INSERT INTO storage_settings (key, value) VALUES
    ('telemetry_retention_days', '400'),
    ('events_retention_days', '730'),
    ('rollup_retention_days', '1825');
