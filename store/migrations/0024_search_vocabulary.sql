-- 0024_search_vocabulary: string parameters whose values repeat on many resources are searched through a vocabulary.
--
-- An AuditEvent's agent-name is the name of whoever sent or read: a few senders, users and apps, on every event. A
-- row per prefix of it on every event was more than half of the string index an imported message wrote. Now such a
-- parameter's rows hold only the hash of the whole value, and this table holds, once per distinct value, the hash of
-- each of its prefixes beside the hash of the value (store/blind-index.ts VOCABULARY_PARAMS). A "starts with" search
-- reads the value hashes of its prefix here, then the rows holding them. Rows written before this keep their prefix
-- rows, which the search still matches, so nothing needs rebuilding.
CREATE TABLE fhir_search_vocabulary (
  resource_type  text   NOT NULL,
  param          text   NOT NULL,
  prefix_hash    bigint NOT NULL,
  value_hash     bigint NOT NULL,
  PRIMARY KEY (resource_type, param, prefix_hash, value_hash)
);
