-- The next waiting slot for a unit type is read in this order each time a unit frees up.
-- Without the index every read sorted the whole queue: in a burst with thousands of slots
-- waiting it took about 2 ms and was most of the database's work (README, Benchmark).
CREATE INDEX IF NOT EXISTS pending_by_urgency
    ON pending (unit_type, priority, queued_at, incident_id, slot);
