-- The fleet as the dispatcher sees it. A unit serves at most one incident: `incident_id`
-- is set only by the atomic claim, which requires status 'available'.
CREATE TABLE IF NOT EXISTS units (
    unit_id      text PRIMARY KEY,
    unit_type    text NOT NULL,
    agency       text NOT NULL,
    base         text NOT NULL,
    capabilities text[] NOT NULL DEFAULT '{}',
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    status       text NOT NULL DEFAULT 'available',
    incident_id  uuid,
    status_at    timestamptz NOT NULL,
    CONSTRAINT assigned_when_busy CHECK (
        (status = 'available' AND incident_id IS NULL) OR status <> 'available'
    )
);
CREATE INDEX IF NOT EXISTS units_free_by_type ON units (unit_type) WHERE status = 'available';

CREATE TABLE IF NOT EXISTS dispatches (
    dispatch_id     uuid PRIMARY KEY,
    incident_id     uuid NOT NULL,
    unit_id         text NOT NULL REFERENCES units (unit_id),
    status          text NOT NULL,
    dispatched_at   timestamptz NOT NULL,
    acknowledged_at timestamptz
);
CREATE INDEX IF NOT EXISTS dispatches_by_incident ON dispatches (incident_id);

-- Slots of a run card no unit was free for; served as soon as a unit of the type frees up.
CREATE TABLE IF NOT EXISTS pending (
    incident_id uuid NOT NULL,
    slot        integer NOT NULL,
    unit_type   text NOT NULL,
    priority    text NOT NULL,
    category    text NOT NULL,
    place       jsonb,
    queued_at   timestamptz NOT NULL,
    PRIMARY KEY (incident_id, slot)
);

CREATE TABLE IF NOT EXISTS work_orders (
    work_order_id uuid PRIMARY KEY,
    incident_id   uuid NOT NULL UNIQUE,
    agency        text NOT NULL,
    issued_at     timestamptz NOT NULL,
    due_at        timestamptz NOT NULL
);
