-- 0006_mapping_versions_and_order: what each message and resource version was mapped with, the event time that
-- orders updates to a resource, and the references between current resources (for patient merges).
--
-- mapping_sha256 is the version (SHA-256 of the canonical content, a key of mapping_config) of the mapping
-- configuration a message was mapped with, recorded on the message and on every resource version it produced.
-- event_time is the time of the event the message reports (EVN-2, else MSH-7): a message about an earlier event
-- that arrives after a later one may fill in what the resource lacks, but never overwrites the later state.

ALTER TABLE inbox_message ADD COLUMN mapping_sha256 text;
ALTER TABLE fhir_resource_history ADD COLUMN mapping_sha256 text;
ALTER TABLE fhir_resource_history ADD COLUMN event_time timestamptz;
ALTER TABLE fhir_resource ADD COLUMN event_time timestamptz;

-- Literal references ("Type/id") held by the current version of each resource. A write replaces the rows of the
-- version it supersedes, as for the search index; the target comes first so that "who points at Patient/x" is one
-- index range.
CREATE TABLE fhir_reference (
  target         text NOT NULL,
  resource_type  text NOT NULL,
  id             text NOT NULL,
  PRIMARY KEY (target, resource_type, id)
);

-- Resources written before this migration: index their references once.
INSERT INTO fhir_reference (target, resource_type, id)
SELECT DISTINCT ref #>> '{}', r.resource_type, r.id
  FROM fhir_resource r, jsonb_path_query(r.content, 'lax $.**.reference') AS ref
 WHERE jsonb_typeof(ref) = 'string' AND (ref #>> '{}') ~ '^[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}$'
ON CONFLICT DO NOTHING;
