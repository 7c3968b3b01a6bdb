-- 0004_mapping_config: the mapping configurations that provenance leaves name. Each leaf's preimage carries
-- mappingSha256, the hex SHA-256 of the RFC 8785 canonical JSON of the mapping configuration the ingest worker used;
-- the configuration itself is kept here under that digest, so an auditor can re-hash it and see what a leaf's
-- mapping was. Rows are written once per configuration (ON CONFLICT DO NOTHING) and never updated.
--
-- jsonb does not keep key order or number spelling, so the digest is recomputed from the canonical form of the parsed
-- content, never from its text.

CREATE TABLE mapping_config (
  sha256         text        PRIMARY KEY,
  content        jsonb       NOT NULL,
  first_used_at  timestamptz NOT NULL DEFAULT now()
);
