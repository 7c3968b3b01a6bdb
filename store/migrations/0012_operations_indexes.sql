-- 0012_operations_indexes: indexes for the operational statistics (store/operations.ts: GET /admin/stats and the
-- state gauges of GET /metrics), so that counting messages by state and minute reads a time range of an index
-- instead of the whole inbox.
--
-- inbox_message_received (received_at) becomes (received_at, state): the same range scans as before, and counts by
-- state over a window (the last minute, the last 30 minutes, the last 24 hours) come from the index alone. It
-- replaces the old index rather than joining it, so a message's insert and its state change write no more index
-- entries than before (the state change is not a HOT update either way: state is in inbox_message_unfinished's
-- predicate).
DROP INDEX IF EXISTS inbox_message_received;
CREATE INDEX inbox_message_received ON inbox_message (received_at, state);

-- Messages by the time they were mapped (done) or failed: per-minute throughput and recent failures. Rows still
-- queued and rows refused at intake have no processed_at and are not in it.
CREATE INDEX inbox_message_processed ON inbox_message (processed_at, state) WHERE processed_at IS NOT NULL;
