-- 0008_mapping_deployment: which version of each mapping config is active, and the history of how each version
-- became active. A config is named by its source system ('default' for the one that applies when none matches); a
-- version is a key of mapping_config (the SHA-256 of the config's canonical content).
--
-- A row is written when a process loads a config file whose version differs from the name's last 'file' row
-- (reason 'file'; source says which file, or 'engine settings' for the built-in default), and when staff roll a
-- config back to a version it had before (reason 'rollback'). The new row is the active one: exactly one row per
-- name is active, and every engine and worker process maps with the active version of each config it has, whatever
-- its own files say, until a new file version is deployed. Rows are never deleted; only `active` changes.
--
-- sha256 does not reference mapping_config: that table is what an audit checks, and a row missing there must show
-- up as an audit finding, not be held in place by a constraint.

CREATE TABLE mapping_deployment (
  id           bigserial   PRIMARY KEY,
  name         text        NOT NULL,
  sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  deployed_at  timestamptz NOT NULL DEFAULT now(),
  reason       text        NOT NULL CHECK (reason IN ('file', 'rollback')),
  source       text,
  active       boolean     NOT NULL
);

CREATE UNIQUE INDEX mapping_deployment_one_active ON mapping_deployment (name) WHERE active;
CREATE INDEX mapping_deployment_history ON mapping_deployment (name, id);
