-- Public alerts (CAP 1.2): those officers issue (`siaga alert`, topic siaga.alerts) and those
-- derived from disaster incidents. Each row is one message, kept whole (`message`, the
-- CapAlert of schemas/cap.py); a message is current while no later one references it and
-- it has not expired, so the feed is the same whatever order the messages arrived in.
CREATE TABLE IF NOT EXISTS cap_alerts (
    identifier    text PRIMARY KEY,
    origin        text NOT NULL,          -- 'issued' by an officer, or 'incident' (derived)
    incident_id   uuid,
    msg_type      text NOT NULL,          -- Alert, Update or Cancel
    status        text NOT NULL,          -- Actual, Exercise, System or Test
    sent          timestamptz NOT NULL,
    expires       timestamptz,
    thread_length integer NOT NULL,       -- how many earlier messages it references
    incident_seq  integer,                -- derived: its place among the incident's alerts
    refs          jsonb NOT NULL,         -- [{"sender", "identifier", "sent"}, ...]
    message       jsonb NOT NULL
);
-- "Is this message referenced by a later one?" (refs @> [{"identifier": ...}]).
CREATE INDEX IF NOT EXISTS cap_alerts_refs ON cap_alerts USING gin (refs jsonb_path_ops);
-- The latest derived message of an incident, which its next one follows (a new thread may
-- begin after a Cancel, so it is the last in the incident's order, not the longest thread).
CREATE INDEX IF NOT EXISTS cap_alerts_incident_seq
    ON cap_alerts (incident_id, incident_seq) WHERE origin = 'incident';
CREATE INDEX IF NOT EXISTS cap_alerts_current ON cap_alerts (expires);
