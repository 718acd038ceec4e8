-- Which number made each intake, and what triage decided about the incident it opened:
-- the enricher's own copy, so a number's pranks can be counted without asking another stage.
CREATE TABLE IF NOT EXISTS caller_intakes (
    intake_id   uuid PRIMARY KEY,
    phone       text NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS caller_intakes_by_phone ON caller_intakes (phone);

-- One row per incident triage opened; `prank` once it was classified as a prank.
-- Filled from IncidentOpened (intake) and IncidentClassified (verdict) in either order.
CREATE TABLE IF NOT EXISTS incident_verdicts (
    incident_id uuid PRIMARY KEY,
    intake_id   uuid,
    prank       boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS incident_verdicts_by_intake ON incident_verdicts (intake_id);
