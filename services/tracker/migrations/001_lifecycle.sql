-- Each incident's status and the NEMSIS eTimes of its steps (first time each happened).
CREATE TABLE IF NOT EXISTS incidents (
    incident_id        uuid PRIMARY KEY,
    status             text NOT NULL,
    call_received_at   timestamptz,
    classified_at      timestamptz,
    unit_notified_at   timestamptz,
    acknowledged_at    timestamptz,
    en_route_at        timestamptz,
    on_scene_at        timestamptz,
    left_scene_at      timestamptz,
    at_destination_at  timestamptz,
    back_in_service_at timestamptz,
    resolved_at        timestamptz,
    updated_at         timestamptz NOT NULL
);

-- Units sent to incidents; an assignment ends when the unit clears or is released. A unit's
-- report naming its incident may arrive before the order itself (they travel on different
-- topics), so the first of the two creates the row.
CREATE TABLE IF NOT EXISTS assignments (
    incident_id    uuid NOT NULL,
    unit_id        text NOT NULL,
    reached_scene  boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    dispatched_at  timestamptz NOT NULL,
    PRIMARY KEY (incident_id, unit_id)
);
CREATE INDEX IF NOT EXISTS assignments_active_by_unit ON assignments (unit_id) WHERE active;
