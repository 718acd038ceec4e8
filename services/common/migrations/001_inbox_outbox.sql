-- Plumbing every stage schema gets: the inbox records what was processed, in the same
-- transaction as its effects; the outbox holds events until the relay has published them.
CREATE TABLE IF NOT EXISTS inbox (
    message_key  text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS outbox (
    seq        bigserial PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,
    topic      text NOT NULL,
    key        bytea,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
