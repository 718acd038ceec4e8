-- Duplicate-call correlation: when each incident's first call came in, whether a human must
-- triage it, and when it ended (a new call about an ended incident opens a new one).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS received_at timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS needs_review boolean NOT NULL DEFAULT false;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS ended_at timestamptz;
CREATE INDEX IF NOT EXISTS incidents_open_by_category
    ON incidents (category, received_at) WHERE ended_at IS NULL;
ALTER TABLE intakes ADD COLUMN IF NOT EXISTS reason text;
