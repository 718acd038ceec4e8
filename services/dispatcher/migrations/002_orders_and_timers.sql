-- What each order needs to be re-sent to the next unit, and when it must be acknowledged.
ALTER TABLE dispatches
    ADD COLUMN IF NOT EXISTS slot        integer,
    ADD COLUMN IF NOT EXISTS unit_type   text,
    ADD COLUMN IF NOT EXISTS capability  text,
    ADD COLUMN IF NOT EXISTS category    text,
    ADD COLUMN IF NOT EXISTS priority    text,
    ADD COLUMN IF NOT EXISTS place       jsonb,
    ADD COLUMN IF NOT EXISTS ack_due_at  timestamptz,
    ADD COLUMN IF NOT EXISTS ended_at    timestamptz,
    ADD COLUMN IF NOT EXISTS end_reason  text;
CREATE INDEX IF NOT EXISTS dispatches_waiting_ack ON dispatches (ack_due_at) WHERE status = 'dispatched';

ALTER TABLE pending ADD COLUMN IF NOT EXISTS capability text;

-- Units taken off an incident (no acknowledgement, supervisor) are not offered to it again.
CREATE TABLE IF NOT EXISTS passed_over (
    incident_id uuid NOT NULL,
    unit_id     text NOT NULL,
    PRIMARY KEY (incident_id, unit_id)
);

ALTER TABLE work_orders
    ADD COLUMN IF NOT EXISTS category     text,
    ADD COLUMN IF NOT EXISTS priority     text,
    ADD COLUMN IF NOT EXISTS answered_at  timestamptz,
    ADD COLUMN IF NOT EXISTS closed_at    timestamptz,
    ADD COLUMN IF NOT EXISTS reminded_at  timestamptz,
    ADD COLUMN IF NOT EXISTS escalated_at timestamptz;
CREATE INDEX IF NOT EXISTS work_orders_open ON work_orders (due_at) WHERE answered_at IS NULL AND closed_at IS NULL;
