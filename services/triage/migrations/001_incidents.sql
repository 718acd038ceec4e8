-- Which incident each intake belongs to, and the open incidents triage correlates against.
CREATE TABLE IF NOT EXISTS incidents (
    incident_id    uuid PRIMARY KEY,
    category       text NOT NULL,
    priority       text NOT NULL,
    kecamatan_code text,
    lat            double precision,
    lon            double precision,
    opened_at      timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS intakes (
    intake_id   uuid PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES incidents (incident_id),
    linked_at   timestamptz NOT NULL
);
