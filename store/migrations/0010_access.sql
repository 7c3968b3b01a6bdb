-- 0010_access: who may call the engine, and as whom.
--
-- oauth_client: OAuth 2.0 clients of the client-credentials grant (SMART Backend Services). A client authenticates
--   either with a secret (only its SHA-256 is kept: client_secret_basic / client_secret_post) or with a JWT signed
--   by a key from its registered JWK Set (private_key_jwt). `scopes` is what the client may be granted; a token
--   carries the requested subset. `source` binds the client to one configured source (a hospital): it may ingest
--   only messages from that source's facilities.
-- oauth_assertion: client-assertion ids (jti) already used, kept until the assertion expires, so an assertion
--   cannot be replayed (RFC 7523 section 3).
-- api_key.source: the same source binding for API keys.

CREATE TABLE oauth_client (
  id              bigserial   PRIMARY KEY,
  client_id       text        NOT NULL UNIQUE,
  name            text        NOT NULL,
  secret_sha256   bytea,
  jwks            jsonb,
  scopes          text[]      NOT NULL,
  source          text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz,
  CHECK (secret_sha256 IS NOT NULL OR jwks IS NOT NULL)
);

CREATE TABLE oauth_assertion (
  client_id   text        NOT NULL,
  jti         text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertion_expiry ON oauth_assertion (expires_at);

ALTER TABLE api_key ADD COLUMN source text;
