-- 0017_current_as_pointer: the current version of a resource is a pointer into fhir_resource_history, not a second
-- copy of its content. Every write used to store each version twice (history and current row): about an eighth of
-- the WAL of a mapped message. fhir_current keeps which version is current (and its time, deleted flag and event
-- time); the view fhir_resource reads the current content through it, by the history's primary key.

DO $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM fhir_resource r
     WHERE NOT EXISTS (SELECT 1 FROM fhir_resource_history h WHERE h.resource_type = r.resource_type AND h.id = r.id AND h.version_id = r.version_id)
  ) THEN
    RAISE EXCEPTION 'a current resource row has no history row of its version; run anchorline audit before upgrading';
  END IF;
END $$;

ALTER TABLE fhir_resource RENAME TO fhir_current;
ALTER TABLE fhir_current DROP COLUMN content;
-- Room on each page for the next version's pointer, so that updating it stays on the page (HOT: no index entry).
ALTER TABLE fhir_current SET (fillfactor = 80);

CREATE VIEW fhir_resource AS
  SELECT c.resource_type, c.id, c.version_id, c.last_updated, h.content, c.deleted, c.event_time
    FROM fhir_current c
    JOIN fhir_resource_history h ON h.resource_type = c.resource_type AND h.id = c.id AND h.version_id = c.version_id;
