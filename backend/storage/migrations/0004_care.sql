-- Care engine state: how far the engine has read each input stream, the risk signals that
-- storm control counts, the members of an incident, one open incident per scope and kind,
-- the CSM's action on an alert, and the "device_risk" alert that shares a ticket's service need.

CREATE TABLE care_cursors (
    stream      text PRIMARY KEY CHECK (stream IN ('predictions', 'health_scores')),
    last_id     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO care_cursors (stream) VALUES ('predictions'), ('health_scores');

-- Every prediction that met a ticket rule, whether it became a ticket or joined an incident.
CREATE TABLE risk_signals (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    device_id      bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    account_id     bigint REFERENCES accounts (id) ON DELETE CASCADE,
    site_id        bigint REFERENCES sites (id) ON DELETE SET NULL,
    failure_mode   text NOT NULL,
    failure_risk   real NOT NULL,
    prediction_id  bigint REFERENCES predictions (id) ON DELETE SET NULL
);
CREATE INDEX risk_signals_site_time ON risk_signals (site_id, at);
CREATE INDEX risk_signals_account_time ON risk_signals (account_id, at);

ALTER TABLE incidents ADD COLUMN last_member_at timestamptz;
ALTER TABLE incidents ADD COLUMN close_reason text;
CREATE UNIQUE INDEX incidents_one_open_site ON incidents (site_id, kind)
    WHERE closed_at IS NULL AND scope = 'site';
CREATE UNIQUE INDEX incidents_one_open_account ON incidents (account_id, kind)
    WHERE closed_at IS NULL AND scope = 'account';

CREATE TABLE incident_members (
    incident_id    bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    device_id      bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    failure_mode   text NOT NULL,
    failure_risk   real NOT NULL,
    prediction_id  bigint REFERENCES predictions (id) ON DELETE SET NULL,
    added_at       timestamptz NOT NULL,
    PRIMARY KEY (incident_id, device_id, failure_mode)
);

ALTER TABLE tickets ADD COLUMN priority_factors jsonb NOT NULL DEFAULT '{}';
ALTER TABLE tickets ADD COLUMN escalations integer NOT NULL DEFAULT 0;
CREATE INDEX tickets_need ON tickets (need_id);
CREATE INDEX tickets_device_mode_time ON tickets (device_id, failure_mode, created_at DESC);

ALTER TABLE alerts ADD COLUMN action text;
ALTER TABLE alerts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN (
    'health_drop', 'health_band', 'churn_risk', 'fleet_risk', 'renewal_risk', 'device_risk'));
-- One open account-level alert per account and kind; a device_risk alert is one per need.
DROP INDEX alerts_one_open;
CREATE UNIQUE INDEX alerts_one_open ON alerts (account_id, kind)
    WHERE status <> 'resolved' AND kind <> 'device_risk';
CREATE UNIQUE INDEX alerts_one_open_key ON alerts (dedup_key) WHERE status <> 'resolved';
CREATE INDEX alerts_need ON alerts (need_id);
