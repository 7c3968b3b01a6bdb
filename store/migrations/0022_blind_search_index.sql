-- 0022_blind_search_index: the search index holds keyed hashes (blind indexes), not the values searched for.
--
-- Before this, fhir_search_token and fhir_search_string held names, identifiers (a 주민등록번호 among them) and
-- codes in plain text beside the resource id, while the records themselves were sealed under their patients' keys
-- (0020). Now every value is HMAC-SHA-256 under one index key, cut to 64 bits (store/blind-index.ts says why that
-- is enough). The index key is random, wrapped under the master key like a patient's key, and re-wrapped with it on
-- rotation; an engine without encryption uses a fixed public key (the hashes then only make the index compact).
--
-- The old tables are dropped, not converted: SQL cannot compute the hashes (the key never reaches the database).
-- The engine rebuilds the index from the current resources at its next start, before it serves (store/blind-index.ts
-- ensureSearchIndex), because search_index_key has no row yet.
DROP TABLE fhir_search_token;
DROP TABLE fhir_search_string;

-- Token parameters (identifier, code, status, ...) and reference parameters (subject, patient, ...). code_hash
-- answers `param=code`, token_hash `param=system|code`. A reference parameter's row also keeps the reference
-- ('Type/id') itself in `reference`, for _include and the patient compartment, which read where it points: resource
-- ids are pseudonyms the store makes, and fhir_reference holds the same pairs. The owning id is the last key column,
-- so one index serves both the searches and a write's replacement of a resource's rows.
CREATE TABLE fhir_search_token (
  resource_type  text   NOT NULL,
  id             text   NOT NULL,
  param          text   NOT NULL,
  code_hash      bigint NOT NULL,
  token_hash     bigint NOT NULL,
  reference      text
);
CREATE INDEX fhir_search_token_lookup ON fhir_search_token (resource_type, param, code_hash, id);

-- String parameters (name, family, given, ...): for each normalised value, one row for the whole value (`:exact`)
-- and one per prefix up to store/blind-index.ts's PREFIX_CHARS (FHIR string search matches from the start).
CREATE TABLE fhir_search_string (
  resource_type  text   NOT NULL,
  id             text   NOT NULL,
  param          text   NOT NULL,
  value_hash     bigint NOT NULL
);
CREATE INDEX fhir_search_string_lookup ON fhir_search_string (resource_type, param, value_hash, id);

-- The index key: one row. wrapped_key and kek_id are NULL for the public key (encryption never on); fingerprint
-- names the key the rows were built with, so that a start with another key (encryption turned on) rebuilds them.
CREATE TABLE search_index_key (
  id           smallint    PRIMARY KEY CHECK (id = 1),
  wrapped_key  bytea,
  kek_id       text,
  fingerprint  text        NOT NULL,
  built_at     timestamptz NOT NULL DEFAULT now(),
  CHECK ((wrapped_key IS NULL) = (kek_id IS NULL))
);
