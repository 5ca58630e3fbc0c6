-- The backend-to-device direction: desired configuration and commands reach the devices
-- through the `downlink` service (`fleetcare downlink run`, part of `fleetcare up`), which
-- also records what the devices answer.

-- Which desired version the broker has acknowledged (retained on config/desired), and the
-- device's answer to the last version it handled: applied (reported = what it runs) or
-- rejected (reported stays what it ran before; reported_error says why).
ALTER TABLE device_twins
    ADD COLUMN desired_sent_version integer NOT NULL DEFAULT 0,
    ADD COLUMN desired_sent_at      timestamptz,
    ADD COLUMN reported_status      text CHECK (reported_status IN ('applied', 'rejected')),
    ADD COLUMN reported_error       text;

CREATE INDEX device_twins_unsent ON device_twins (device_id)
    WHERE desired_version > desired_sent_version;

-- One row per command. status: queued (stored, not yet acknowledged by the broker), sent
-- (the broker took it; no answer yet), then the device's answer (ok, error, unknown,
-- invalid), or expired (no answer before expires_at). A device too busy to take it gets it
-- again (attempts, next_try_at) until it expires. A late answer still replaces
-- expired: what the device did is what counts.
CREATE TABLE device_commands (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id   text NOT NULL UNIQUE CHECK (command_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    device_id    bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name         text NOT NULL,
    args         jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN
                 ('queued', 'sent', 'ok', 'error', 'unknown', 'invalid', 'expired')),
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_try_at  timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    answered_at  timestamptz,
    result       jsonb,
    error        text
);
CREATE INDEX device_commands_device_time ON device_commands (device_id, created_at DESC);
CREATE INDEX device_commands_open ON device_commands (next_try_at)
    WHERE status IN ('queued', 'sent');
