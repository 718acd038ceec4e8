-- A unit's report is checked against its latest order, open or ended.
CREATE INDEX IF NOT EXISTS dispatches_by_unit ON dispatches (unit_id, dispatched_at DESC);
