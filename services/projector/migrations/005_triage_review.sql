-- Triage's key questions and a call-taker's review: a P1 on uncertain evidence waits in the
-- review queue (its units already sent) until a call-taker confirms, lowers, raises or
-- recategorises it; an incident below the confidence threshold waits there too (nothing
-- sent until then). The review's values replace triage's, whatever order they arrive in.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS needs_confirmation boolean NOT NULL DEFAULT false;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS questions jsonb;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS life_threat text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS review_decision text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS review_note text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS reviewed_by text;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS reviewed_at timestamptz;

DROP VIEW IF EXISTS review_queue;
CREATE VIEW review_queue AS
SELECT incident_id, received_at, channel, text, category, priority, agency, confidence,
       explanation, kecamatan, desa, status, needs_review, needs_confirmation, questions,
       life_threat
  FROM incidents
 WHERE (needs_review OR needs_confirmation)
   AND COALESCE(status, '') NOT IN ('resolved', 'closed', 'cancelled', 'merged')
 ORDER BY received_at NULLS LAST, incident_id;
