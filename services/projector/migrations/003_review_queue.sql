-- The human triage queue: incidents classified below the confidence threshold, not yet ended,
-- oldest first (a call-taker decides; the dispatcher sends nothing for them meanwhile).
CREATE OR REPLACE VIEW review_queue AS
SELECT incident_id, received_at, channel, text, category, priority, agency, confidence,
       explanation, kecamatan, desa, status
  FROM incidents
 WHERE needs_review
   AND COALESCE(status, '') NOT IN ('resolved', 'closed', 'cancelled', 'merged')
 ORDER BY received_at NULLS LAST, incident_id;
