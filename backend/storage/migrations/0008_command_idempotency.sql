-- A client that did not get the answer to `POST /devices/{id}/commands` (a timeout, a 503
-- while the database restarted) may send the request again with the same
-- `Idempotency-Key` header: the command is queued once, and the repeat answers with it.
-- Keys belong to the user who sent them (requested_by) and live as long as the command row.
ALTER TABLE device_commands ADD COLUMN idempotency_key text
    CHECK (idempotency_key ~ '^[!-~]{1,128}$');

CREATE UNIQUE INDEX device_commands_idempotency ON device_commands (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
