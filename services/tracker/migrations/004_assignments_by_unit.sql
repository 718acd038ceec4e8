-- A unit's latest order, open or not, is read for each batch that names the unit (a unit
-- back in service after `returning` closed its order still stamps that incident). Without
-- the index each such read scanned every assignment ever made.
CREATE INDEX IF NOT EXISTS assignments_by_unit ON assignments (unit_id, dispatched_at DESC);
