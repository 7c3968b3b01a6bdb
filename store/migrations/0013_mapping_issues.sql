-- 0013_mapping_issues: what a message's mapping could not map as sent, kept with the message (mappers/issues.ts).
--
-- mapping_issues: the issues of the message's last mapping, a JSON array of { severity, code, location, detail,
-- value? } (value is the value as sent: patient data, shown to admins beside the raw message it came from); NULL when
-- the mapping had none. Rewritten by every mapping of the message, so a reprocessed message shows its new issues.
-- mapping_warnings: how many of them are warnings or errors (information issues are not counted), so that "mapped
-- with warnings" is a filter on a number rather than on JSON.
ALTER TABLE inbox_message
  ADD COLUMN mapping_issues jsonb,
  ADD COLUMN mapping_warnings integer NOT NULL DEFAULT 0;

-- Messages mapped with warnings, newest first (the console's filter and the dashboard's count).
CREATE INDEX inbox_message_warned ON inbox_message (received_at) WHERE mapping_warnings > 0;
