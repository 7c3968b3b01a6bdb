-- 0014_processing_attempts: counts the processing attempts of each message as they start, so that a message whose
-- processing kills or stalls its worker (heap exhaustion, a watchdog kill) is recognised when it comes back.
--   attempts          attempts that ended: in success, in a permanent failure, or in an error the worker caught
--   attempts_started  attempts begun; committed before the attempt's own transaction opens
-- attempts_started - attempts is then the number of attempts that never ended: each one crashed or timed out its
-- worker. A message that reaches the configured number of those is moved to the dead letters (state 'failed',
-- ANCHORLINE_ERR_MESSAGE_POISON) instead of being processed again.
ALTER TABLE inbox_message ADD COLUMN attempts_started integer NOT NULL DEFAULT 0;
-- Rows written before this migration: every attempt they made has ended.
UPDATE inbox_message SET attempts_started = attempts WHERE attempts > 0;
