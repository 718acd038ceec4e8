-- Read models, a pure function of the log: every write is an idempotent upsert that
-- gives the same rows whatever order events of different topics arrive in.
CREATE TABLE IF NOT EXISTS intakes (
    intake_id    uuid PRIMARY KEY,
    channel      text,
    received_at  timestamptz,
    caller_phone text,
    text         text,
    place_hint   text,
    operator_id  text,
    kecamatan    text,
    desa         text,
    place_confidence double precision,
    repeat_caller boolean,
    prank_flagged boolean,
    enriched_at  timestamptz,
    incident_id  uuid
);
CREATE INDEX IF NOT EXISTS intakes_by_incident ON intakes (incident_id);

CREATE TABLE IF NOT EXISTS incidents (
    incident_id    uuid PRIMARY KEY,
    status         text,
    status_at      timestamptz,
    category       text,
    priority       text,
    agency         text,
    confidence     double precision,
    explanation    text,
    needs_review   boolean NOT NULL DEFAULT false,
    sla_seconds    integer,
    channel        text,
    text           text,
    kecamatan_code text,
    kecamatan      text,
    desa_code      text,
    desa           text,
    lat            double precision,
    lon            double precision,
    received_at    timestamptz,
    opened_at      timestamptz,
    classified_at  timestamptz,
    first_dispatched_at timestamptz,
    resolved_at    timestamptz
);
CREATE INDEX IF NOT EXISTS incidents_by_received ON incidents (received_at DESC);

CREATE TABLE IF NOT EXISTS incident_units (
    incident_id   uuid NOT NULL,
    unit_id       text NOT NULL,
    unit_type     text,
    dispatch_id   uuid,
    dispatched_at timestamptz,
    eta_seconds   integer,
    status        text,
    status_at     timestamptz,
    PRIMARY KEY (incident_id, unit_id)
);

CREATE TABLE IF NOT EXISTS units (
    unit_id     text PRIMARY KEY,
    unit_type   text,
    agency      text,
    base        text,
    lat         double precision,
    lon         double precision,
    status      text,
    status_at   timestamptz,
    incident_id uuid,
    assigned_at timestamptz
);

CREATE TABLE IF NOT EXISTS timeline (
    event_id    text PRIMARY KEY,
    incident_id uuid NOT NULL,
    at          timestamptz NOT NULL,
    event_type  text NOT NULL,
    summary     text NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_by_incident ON timeline (incident_id, at);

CREATE TABLE IF NOT EXISTS work_orders (
    work_order_id uuid PRIMARY KEY,
    incident_id   uuid NOT NULL,
    agency        text NOT NULL,
    category      text NOT NULL,
    priority      text NOT NULL,
    summary       text NOT NULL,
    issued_at     timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'open'
);

CREATE TABLE IF NOT EXISTS dead_letters (
    event_id      text PRIMARY KEY,
    stage         text NOT NULL,
    reason        text NOT NULL,
    source_topic  text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    at            timestamptz NOT NULL,
    preview       text NOT NULL
);
