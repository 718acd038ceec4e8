-- Escalations, SLA breaches and the agency queues' lifecycle.
ALTER TABLE incidents
    ADD COLUMN IF NOT EXISTS escalated_at timestamptz,
    ADD COLUMN IF NOT EXISTS sla_breached boolean NOT NULL DEFAULT false;

ALTER TABLE work_orders
    ADD COLUMN IF NOT EXISTS reminded_at  timestamptz,
    ADD COLUMN IF NOT EXISTS overdue_at   timestamptz,
    ADD COLUMN IF NOT EXISTS answered_at  timestamptz,
    ADD COLUMN IF NOT EXISTS answered_by  text,
    ADD COLUMN IF NOT EXISTS response     text,
    ADD COLUMN IF NOT EXISTS closed_at    timestamptz,
    ADD COLUMN IF NOT EXISTS resolution   text;
ALTER TABLE work_orders DROP COLUMN IF EXISTS status;
CREATE INDEX IF NOT EXISTS work_orders_by_agency ON work_orders (agency, due_at);

ALTER TABLE units ADD COLUMN IF NOT EXISTS position_at timestamptz;

CREATE TABLE IF NOT EXISTS sla_breaches (
    incident_id uuid NOT NULL,
    target      text NOT NULL,
    priority    text NOT NULL,
    channel     text NOT NULL,
    category    text NOT NULL,
    received_at timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    breached_at timestamptz NOT NULL,
    PRIMARY KEY (incident_id, target)
);
