-- 0001_foundation: the message store (inbox) with raw bytes, hashes and ACKs; FHIR resources with full version
-- history and the search index over them; API keys. Tables are unqualified: the connection's search_path selects the
-- schema (config database.schema).

-- Every inbound message, exactly as received, committed before it is acknowledged.
--   disposition: accepted  -> the message is to be mapped (unique per sender and control id)
--                rejected  -> refused at intake (malformed, unsupported, bad charset); kept for inspection
--                conflict  -> reused a control id with different bytes; kept for review
--   state:       queued -> done | failed (accepted messages); rejected (rejected and conflict messages)
--   raw_sha256 is the SHA-256 of `raw`; raw_truncated marks an oversized frame of which only a prefix was kept
--   (raw_size is then the size of the whole frame).
CREATE TABLE inbox_message (
  id             bigserial PRIMARY KEY,
  protocol       text        NOT NULL,
  source         text        NOT NULL,
  sender         text        NOT NULL DEFAULT '',
  control_id     text,
  message_type   text,
  message_time   text,
  raw            bytea       NOT NULL,
  raw_sha256     bytea       NOT NULL,
  raw_size       integer     NOT NULL,
  raw_truncated  boolean     NOT NULL DEFAULT false,
  charset        text,
  disposition    text        NOT NULL CHECK (disposition IN ('accepted', 'rejected', 'conflict')),
  state          text        NOT NULL CHECK (state IN ('queued', 'done', 'failed', 'rejected')),
  attempts       integer     NOT NULL DEFAULT 0,
  error_code     text,
  error_detail   text,
  ack            bytea,
  ack_code       text,
  received_at    timestamptz NOT NULL DEFAULT now(),
  processed_at   timestamptz
);
-- A resend of an accepted message is recognised by (sender, control id).
CREATE UNIQUE INDEX inbox_message_sender_control ON inbox_message (sender, control_id) WHERE disposition = 'accepted';
-- The sweeper's scan of unfinished work.
CREATE INDEX inbox_message_unfinished ON inbox_message (received_at) WHERE state = 'queued';
CREATE INDEX inbox_message_received ON inbox_message (received_at);

-- The current version of each FHIR resource.
CREATE TABLE fhir_resource (
  resource_type  text        NOT NULL,
  id             text        NOT NULL,
  version_id     integer     NOT NULL,
  last_updated   timestamptz NOT NULL,
  content        jsonb       NOT NULL,
  deleted        boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (resource_type, id)
);

-- Every version ever written, including the current one; never updated, only appended.
CREATE TABLE fhir_resource_history (
  resource_type      text        NOT NULL,
  id                 text        NOT NULL,
  version_id         integer     NOT NULL,
  last_updated       timestamptz NOT NULL,
  content            jsonb       NOT NULL,
  deleted            boolean     NOT NULL DEFAULT false,
  source_message_id  bigint      REFERENCES inbox_message (id),
  PRIMARY KEY (resource_type, id, version_id)
);
CREATE INDEX fhir_resource_history_source ON fhir_resource_history (source_message_id);

-- Search index for token parameters (identifier, gender, ...). A write replaces the entries of the version it
-- supersedes, found by their full key: the owning id is the last key column, so one index serves both the searches
-- and that replacement (a second index per row would double the WAL of every write).
CREATE TABLE fhir_search_token (
  resource_type  text NOT NULL,
  id             text NOT NULL,
  param          text NOT NULL,
  system         text NOT NULL DEFAULT '',
  code           text NOT NULL
);
CREATE INDEX fhir_search_token_lookup ON fhir_search_token (resource_type, param, code, system, id);

-- Search index for string parameters (name, family, given, ...): values normalised for prefix matching.
CREATE TABLE fhir_search_string (
  resource_type  text NOT NULL,
  id             text NOT NULL,
  param          text NOT NULL,
  value          text NOT NULL
);
CREATE INDEX fhir_search_string_lookup ON fhir_search_string (resource_type, param, value text_pattern_ops, id);

-- Bearer API keys. Only the SHA-256 of a key is stored; the key itself is shown once, when it is made.
CREATE TABLE api_key (
  id           bigserial   PRIMARY KEY,
  name         text        NOT NULL,
  key_sha256   bytea       NOT NULL UNIQUE,
  scopes       text[]      NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
