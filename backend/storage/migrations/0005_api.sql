-- Broker accounts that are not devices (backend services such as ingest and the command
-- sender): their MQTT username, a mosquitto PBKDF2-SHA512 hash of their password, and
-- whether the account is still active. Devices keep their own hash in devices.credential_hash.
CREATE TABLE broker_service_accounts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.-]{1,64}$'),
    credential_hash  text NOT NULL CHECK (credential_hash LIKE '$7$%'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
