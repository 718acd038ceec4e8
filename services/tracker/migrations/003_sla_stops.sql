-- Targets met or voided, kept even when their timer is not running yet: the tracker reads
-- classifications and dispatch orders from different topics, so an order can arrive before
-- the classification that starts its timer; the timer then starts already met.
CREATE TABLE IF NOT EXISTS sla_stops (
    incident_id uuid NOT NULL,
    target      text NOT NULL,          -- dispatch | first_response | * (every target)
    at          timestamptz NOT NULL,
    met         boolean NOT NULL,
    PRIMARY KEY (incident_id, target)
);
