-- 0007_terminology: code systems and their concepts (SNOMED CT, KCD/ICD-10, KOSTOM, LOINC, local systems), ConceptMaps
-- from local codes to standard ones, and the worklist of codes that arrived with no mapping.
--
-- A code system is identified by its canonical URL (http://snomed.info/sct, http://loinc.org, ...) and holds one
-- loaded version at a time: loading a release replaces the previous one. A ConceptMap is kept per (url, version);
-- the active version of each url is the one translations use. Loading is done in batches by the loaders in
-- terminology/, so a full release never has to fit in memory.

CREATE TABLE code_system (
  url            text        PRIMARY KEY,
  version        text        NOT NULL,
  name           text        NOT NULL,
  title          text,
  -- What was loaded: 'snomed-rf2', 'icd10', 'kcd', 'kostom', 'loinc', 'fhir' (a CodeSystem resource), ...
  source_format  text        NOT NULL,
  concept_count  bigint      NOT NULL DEFAULT 0,
  loaded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE concept (
  system         text        NOT NULL REFERENCES code_system (url) ON DELETE CASCADE,
  code           text        NOT NULL,
  display        text,
  active         boolean     NOT NULL DEFAULT true,
  -- [{ "language": "ko", "use": {system, code}?, "value": "..." }]: other terms, e.g. the Korean term.
  designations   jsonb       NOT NULL DEFAULT '[]',
  -- [{ "code": "parent", "valueCode": "..." }, ...]: FHIR $lookup properties.
  properties     jsonb       NOT NULL DEFAULT '[]',
  PRIMARY KEY (system, code)
);

-- SNOMED CT relationships (IS-A and attributes), for $lookup parents/children and subsumption later.
CREATE TABLE concept_relationship (
  system         text        NOT NULL REFERENCES code_system (url) ON DELETE CASCADE,
  source_code    text        NOT NULL,
  type_code      text        NOT NULL,
  destination_code text      NOT NULL,
  PRIMARY KEY (system, source_code, type_code, destination_code)
);
CREATE INDEX concept_relationship_destination ON concept_relationship (system, destination_code, type_code);

CREATE TABLE concept_map (
  url            text        NOT NULL,
  version        text        NOT NULL,
  name           text,
  -- The full FHIR R4 ConceptMap as loaded.
  content        jsonb       NOT NULL,
  -- Lowercase hex SHA-256 of the canonical JSON of content.
  content_sha256 text        NOT NULL,
  active         boolean     NOT NULL DEFAULT true,
  loaded_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (url, version)
);
CREATE UNIQUE INDEX concept_map_one_active ON concept_map (url) WHERE active;

-- ConceptMap group elements flattened for lookup: one row per (source code, target code).
CREATE TABLE concept_map_element (
  map_url        text        NOT NULL,
  map_version    text        NOT NULL,
  source_system  text        NOT NULL,
  source_code    text        NOT NULL,
  target_system  text        NOT NULL,
  target_code    text        NOT NULL,
  target_display text,
  equivalence    text        NOT NULL,
  FOREIGN KEY (map_url, map_version) REFERENCES concept_map (url, version) ON DELETE CASCADE,
  PRIMARY KEY (map_url, map_version, source_system, source_code, target_system, target_code)
);
CREATE INDEX concept_map_element_source ON concept_map_element (source_system, source_code);

-- Codes that arrived in a message with no mapping to a standard system: the integration staff's worklist.
CREATE TABLE unmapped_code (
  system         text        NOT NULL,
  code           text        NOT NULL,
  -- A display text the sender used (the latest seen), to help whoever maps it; never patient data.
  display        text,
  -- Mapping configuration (source system) it came through.
  source         text        NOT NULL,
  occurrences    bigint      NOT NULL DEFAULT 0,
  first_seen     timestamptz NOT NULL DEFAULT now(),
  last_seen      timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz,
  PRIMARY KEY (system, code, source)
);
CREATE INDEX unmapped_code_open ON unmapped_code (last_seen DESC) WHERE resolved_at IS NULL;

-- Which messages carried an unmapped code, so that resolving it can re-map them.
CREATE TABLE unmapped_code_message (
  system         text        NOT NULL,
  code           text        NOT NULL,
  message_id     bigint      NOT NULL REFERENCES inbox_message (id),
  PRIMARY KEY (system, code, message_id)
);
