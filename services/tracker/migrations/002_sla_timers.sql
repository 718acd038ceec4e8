-- Service-level targets per incident. A timer is met by the step it waits for, or breached
-- once by the tracker's timer job; both stamps are written in the same transaction as the
-- events they cause, so a restart neither forgets a timer nor raises a breach twice.
CREATE TABLE IF NOT EXISTS sla_timers (
    incident_id uuid NOT NULL,
    target      text NOT NULL,          -- dispatch | first_response
    due_at      timestamptz NOT NULL,
    priority    text NOT NULL,
    channel     text NOT NULL,
    category    text NOT NULL,
    received_at timestamptz NOT NULL,
    met_at      timestamptz,
    voided_at   timestamptz,
    breached_at timestamptz,
    PRIMARY KEY (incident_id, target)
);
CREATE INDEX IF NOT EXISTS sla_timers_running ON sla_timers (due_at)
    WHERE met_at IS NULL AND voided_at IS NULL AND breached_at IS NULL;
