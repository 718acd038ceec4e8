-- API keys of outside clients, stored as digests only; the intakes the gateway accepted
-- (one row per intake id: the same id posted twice is one intake) and the incident each
-- joined, as triage told.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     uuid PRIMARY KEY,
    name       text NOT NULL,
    digest     bytea NOT NULL UNIQUE,
    scopes     text[] NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_by_name ON api_keys (name);

CREATE TABLE IF NOT EXISTS intakes (
    intake_id   uuid PRIMARY KEY,
    channel     text NOT NULL,
    accepted_at timestamptz NOT NULL,
    key_name    text,
    incident_id uuid
);
CREATE INDEX IF NOT EXISTS intakes_by_incident ON intakes (incident_id);
