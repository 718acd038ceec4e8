-- Redrives of dead letters (`siaga dlq redrive`) and which dead letter a redriven copy
-- that failed again came from, so `siaga dlq list` can tell open from handled ones.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS redrive_of text;

CREATE TABLE IF NOT EXISTS dead_letter_redrives (
    event_id       text PRIMARY KEY,
    dead_letter_id text NOT NULL,
    source_topic   text NOT NULL,
    partition      integer NOT NULL,
    "offset"       bigint NOT NULL,
    redriven_at    timestamptz NOT NULL,
    operator       text
);
CREATE INDEX IF NOT EXISTS dead_letter_redrives_by_dead_letter
    ON dead_letter_redrives (dead_letter_id);

-- The unit board remembers the incident a unit last cleared and when, so late events of
-- that finished assignment change nothing in any order (services/projector/board.py).
ALTER TABLE units ADD COLUMN IF NOT EXISTS cleared_incident_id uuid;
ALTER TABLE units ADD COLUMN IF NOT EXISTS cleared_at timestamptz;
