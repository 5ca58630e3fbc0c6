-- Customers: support tickets as the service desk records them (not every one is about a
-- device, unlike care tickets), survey answers (NPS) and a lookup for review queues.

CREATE TABLE service_tickets (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id          text NOT NULL UNIQUE,
    account_id         bigint REFERENCES accounts (id) ON DELETE CASCADE,
    org_ref            text NOT NULL,
    device_id          bigint REFERENCES devices (id) ON DELETE SET NULL,
    category           text NOT NULL,
    opened_at          timestamptz NOT NULL,
    first_response_at  timestamptz,
    resolved_at        timestamptz,
    CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE INDEX service_tickets_account_time ON service_tickets (account_id, opened_at);
CREATE INDEX service_tickets_org ON service_tickets (org_ref);

CREATE TABLE account_nps (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    surveyed_at  timestamptz NOT NULL,
    score        smallint NOT NULL CHECK (score BETWEEN 0 AND 10)
);
CREATE INDEX account_nps_account_time ON account_nps (account_id, surveyed_at);

CREATE INDEX account_identities_review ON account_identities (decided_at)
    WHERE superseded_at IS NULL AND status = 'review';
