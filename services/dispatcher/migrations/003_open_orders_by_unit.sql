-- A unit's report closes its open orders; without this index that was a scan of every
-- dispatch ever made, slower with each shift.
CREATE INDEX IF NOT EXISTS dispatches_open_by_unit ON dispatches (unit_id)
    WHERE status IN ('dispatched', 'acknowledged');
