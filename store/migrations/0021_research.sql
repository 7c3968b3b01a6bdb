-- 0021_research: research projects and the separate, de-identified research database they are released into
-- (store/research.ts, api/research.ts, workers/research-refresh.ts).
--
-- In the engine's (clinical) schema, what only the engine and data stewards see:
-- research_deid_config: de-identification configs by the SHA-256 of their canonical JSON, as mapping_config keeps
--   mapping configs: a release names the digest it ran with, and the digest always finds the config.
-- research_project: one row per project (the ResearchStudy's id): its cohort Group, the resource types and elements
--   it releases, its de-identification config, quasi-identifiers with k (and l over a sensitive attribute), and the
--   project secret the pseudonyms are keyed with. The secret never leaves the engine; rotating it makes a new
--   version. `watermark` is the newest ledger leaf (ledger_leaf.id) whose version the last projection took into
--   account: every version of every resource, by any path, has a leaf written in its transaction, so the leaves after
--   the watermark are exactly what changed since (workers/research-refresh.ts).
-- research_project_version: every version of the settings (without the secret), for the usage history.
-- research_projection: which clinical resource each research row came from (the only link between the two
--   databases, and it lives here, never in the research schema), with the version it was made from.
-- research_release: every release and refresh: when, with which config, counts, the k-anonymity figures, and
--   whether it was published or refused.
--
-- In the research schema ('<schema>_research', or 'research_' and a digest of a schema name too long for that), what
-- researchers query, and nothing that names a patient or a clinical record:
-- resource: the de-identified resources of every project, by pseudonymous type and id, with the pseudonymous patient
--   and a keyed hash of the source version (so a refresh can tell what changed, and nobody can match it to the
--   clinical store's content hashes without the project secret).
-- search_token, search_date: the minimal search index (patient, code, category, date).
-- bulk_export, bulk_export_file: FHIR Bulk Data exports of a project's data, their state and NDJSON files.
CREATE TABLE research_deid_config (
  sha256      text        PRIMARY KEY,
  content     jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE research_project (
  id                  text        PRIMARY KEY,
  version             integer     NOT NULL,
  group_id            text        NOT NULL,
  released_types      text[]      NOT NULL,
  elements            jsonb       NOT NULL,
  deid_config_sha256  text        NOT NULL REFERENCES research_deid_config (sha256),
  quasi_identifiers   text[]      NOT NULL,
  k                   integer     NOT NULL CHECK (k >= 1),
  l                   integer     CHECK (l IS NULL OR l >= 1),
  sensitive           text,
  secret              bytea       NOT NULL,
  watermark           bigint,
  released_at         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE research_project_version (
  project_id          text        NOT NULL REFERENCES research_project (id),
  version             integer     NOT NULL,
  settings            jsonb       NOT NULL,
  deid_config_sha256  text        NOT NULL REFERENCES research_deid_config (sha256),
  defined_by          text        NOT NULL,
  defined_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, version)
);

CREATE TABLE research_projection (
  project_id      text    NOT NULL REFERENCES research_project (id),
  source_type     text    NOT NULL,
  source_id       text    NOT NULL,
  source_version  integer NOT NULL,
  patient         text    NOT NULL,
  pseudo_type     text    NOT NULL,
  pseudo_id       text    NOT NULL,
  PRIMARY KEY (project_id, source_type, source_id)
);
CREATE INDEX research_projection_patient ON research_projection (project_id, patient);

CREATE TABLE research_release (
  id                  bigserial   PRIMARY KEY,
  project_id          text        NOT NULL REFERENCES research_project (id),
  project_version     integer     NOT NULL,
  kind                text        NOT NULL CHECK (kind IN ('release', 'refresh')),
  outcome             text        NOT NULL CHECK (outcome IN ('published', 'refused')),
  released_at         timestamptz NOT NULL DEFAULT now(),
  deid_config_sha256  text        NOT NULL,
  cohort_size         bigint      NOT NULL,
  excluded_by_consent integer     NOT NULL,
  published           integer     NOT NULL,
  removed             integer     NOT NULL,
  risk                jsonb       NOT NULL,
  audit_event_id      text
);
CREATE INDEX research_release_project ON research_release (project_id, id);

DO $$
DECLARE
  research text := current_schema() || '_research';
BEGIN
  IF octet_length(research) > 63 THEN
    research := 'research_' || left(encode(sha256(convert_to(current_schema(), 'UTF8')), 'hex'), 32);
  END IF;
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', research);
  EXECUTE format($ddl$
    CREATE TABLE %1$I.resource (
      project_id     text        NOT NULL,
      resource_type  text        NOT NULL,
      id             text        NOT NULL,
      patient        text,
      content        jsonb       NOT NULL,
      source_hash    text        NOT NULL,
      published_at   timestamptz NOT NULL,
      PRIMARY KEY (project_id, resource_type, id)
    );
    CREATE INDEX ON %1$I.resource (project_id, resource_type, published_at);
    CREATE INDEX ON %1$I.resource (project_id, patient);
    CREATE TABLE %1$I.search_token (
      project_id     text NOT NULL,
      resource_type  text NOT NULL,
      id             text NOT NULL,
      param          text NOT NULL,
      system         text NOT NULL,
      code           text NOT NULL,
      FOREIGN KEY (project_id, resource_type, id) REFERENCES %1$I.resource ON DELETE CASCADE
    );
    CREATE INDEX ON %1$I.search_token (project_id, resource_type, param, code);
    CREATE INDEX ON %1$I.search_token (project_id, resource_type, id);
    CREATE TABLE %1$I.search_date (
      project_id     text        NOT NULL,
      resource_type  text        NOT NULL,
      id             text        NOT NULL,
      param          text        NOT NULL,
      low            timestamptz NOT NULL,
      high           timestamptz NOT NULL,
      FOREIGN KEY (project_id, resource_type, id) REFERENCES %1$I.resource ON DELETE CASCADE
    );
    CREATE INDEX ON %1$I.search_date (project_id, resource_type, param, low);
    CREATE INDEX ON %1$I.search_date (project_id, resource_type, id);
    CREATE TABLE %1$I.bulk_export (
      id                uuid        PRIMARY KEY,
      project_id        text        NOT NULL,
      client            text        NOT NULL,
      state             text        NOT NULL CHECK (state IN ('accepted', 'in-progress', 'completed', 'failed')),
      request           text        NOT NULL,
      group_id          text        NOT NULL,
      types             text[],
      since             timestamptz,
      transaction_time  timestamptz,
      progress          text,
      error             text,
      created_at        timestamptz NOT NULL DEFAULT now(),
      started_at        timestamptz,
      completed_at      timestamptz
    );
    CREATE INDEX ON %1$I.bulk_export (state, created_at);
    CREATE TABLE %1$I.bulk_export_file (
      export_id      uuid    NOT NULL REFERENCES %1$I.bulk_export ON DELETE CASCADE,
      resource_type  text    NOT NULL,
      part           integer NOT NULL,
      count          integer NOT NULL,
      ndjson         bytea   NOT NULL,
      PRIMARY KEY (export_id, resource_type, part)
    );
  $ddl$, research);
END $$;
