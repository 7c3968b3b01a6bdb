-- 0003_ledger: the provenance ledger. One leaf per stored resource version, written in the same transaction as the
-- version; the anchor worker later numbers unbatched leaves contiguously, builds the batch's RFC 9162 tree and
-- records a signed header that chains to the previous one.

CREATE TABLE ledger_leaf (
  id             bigserial   PRIMARY KEY,
  resource_type  text        NOT NULL,
  resource_id    text        NOT NULL,
  version_id     integer     NOT NULL,
  -- The leaf preimage (anchor/leaf.ts LeafPreimage); the leaf bytes are its RFC 8785 canonical form.
  preimage       jsonb       NOT NULL,
  leaf_hash      bytea       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- Set together when the leaf is batched: its batch and its global position (0, 1, 2, ... across all batches).
  batch_number   bigint,
  leaf_index     bigint      UNIQUE,
  UNIQUE (resource_type, resource_id, version_id)
);
CREATE INDEX ledger_leaf_unbatched ON ledger_leaf (id) WHERE batch_number IS NULL;

-- Signed batch headers (anchor/header.ts BatchHeader), chained by previousHeaderHash.
CREATE TABLE ledger_batch (
  batch_number   bigint      PRIMARY KEY,
  header         jsonb       NOT NULL,
  header_hash    text        NOT NULL UNIQUE,
  signature      text        NOT NULL,
  public_key     text        NOT NULL,
  -- Where the header hash is anchored outside the engine: {"driver": "local"} until a chain driver records it.
  anchor         jsonb       NOT NULL DEFAULT '{"driver": "local"}',
  created_at     timestamptz NOT NULL DEFAULT now()
);
