-- The inbox is pruned by age (services/common/inbox.py): a BRIN index finds the old rows
-- without a scan of the whole table. Rows are written in time order, which is what BRIN
-- needs, and it costs the batch's inbox insert next to nothing, unlike a B-tree.
CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox USING brin (processed_at);
