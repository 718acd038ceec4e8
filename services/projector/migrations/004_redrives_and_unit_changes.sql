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

-- The unit board is the fold of board.apply over each unit's changes in time order, so it
-- is the same whatever order the orders and reports arrive in: each change is kept with
-- the row after it, and one that arrives late is folded in where it belongs. The board
-- also remembers the incident a unit last cleared and when (services/projector/board.py),
-- and the time of the position it shows (the latest reported one).
CREATE TABLE IF NOT EXISTS unit_changes (
    unit_id     text NOT NULL,
    at          timestamptz NOT NULL,
    rank        integer NOT NULL,
    change_id   text NOT NULL,
    status      text NOT NULL,
    incident_id uuid,
    row_status  text,
    row_status_at timestamptz,
    row_incident_id uuid,
    row_assigned_at timestamptz,
    row_cleared_incident_id uuid,
    row_cleared_at timestamptz,
    PRIMARY KEY (unit_id, at, rank, change_id)
);
ALTER TABLE units ADD COLUMN IF NOT EXISTS cleared_incident_id uuid;
ALTER TABLE units ADD COLUMN IF NOT EXISTS cleared_at timestamptz;
ALTER TABLE units ADD COLUMN IF NOT EXISTS position_at timestamptz;
