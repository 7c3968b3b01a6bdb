-- 0025_history_source_unchecked: a version's source message is no longer checked by a foreign key on each insert.
--
-- Every version written by mapping ran the key's check: a row-locking lookup of its inbox_message, planned again
-- for each version (about 90 µs of PostgreSQL time for an ADT's four versions, 7 % of what mapping it costs the
-- server). Nothing deletes inbox messages, the worker writes only versions of the message it holds, and the ledger
-- audit (store/audit.ts) reports a version whose source message does not exist, as it did before.
ALTER TABLE fhir_resource_history DROP CONSTRAINT IF EXISTS fhir_resource_history_source_message_id_fkey;
