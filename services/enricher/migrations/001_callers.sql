-- Caller history: one row per number, updated with each report from it.
CREATE TABLE IF NOT EXISTS callers (
    phone          text PRIMARY KEY,
    reports        integer NOT NULL DEFAULT 0,
    pranks         integer NOT NULL DEFAULT 0,
    ghosts         integer NOT NULL DEFAULT 0,
    first_report_at timestamptz NOT NULL,
    last_report_at  timestamptz NOT NULL
);
