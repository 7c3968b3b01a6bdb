-- 0016_one_log: every provenance leaf in one append-only RFC 9162 log (anchor/log/), with signed C2SP checkpoints in
-- place of per-batch trees. Leaves keep their global leaf_index; the log's leaf i is the leaf with leaf_index i, so
-- the leaves batched before this migration become the first entries of the log (the anchor worker appends them,
-- and the first checkpoint names the last batch header in its `legacy` line). ledger_batch stays, read only, so
-- anchorline-proof/1 bundles made from it still verify.

-- The log's perfect-subtree hashes above the leaves: node (level, idx) covers leaves [idx * 2^level, (idx + 1) *
-- 2^level). Level 0 is ledger_leaf.leaf_hash at leaf_index idx and is not repeated here. A node, once written, never
-- changes; the primary key refuses a second, different one.
CREATE TABLE log_node (
  level  smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
  idx    bigint   NOT NULL CHECK (idx >= 0),
  hash   bytea    NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- Signed checkpoints (anchor/log-bundle.ts). number continues the numbering of ledger_batch, so that leaves
-- (ledger_leaf.batch_number) and chain anchors (ledger_anchor.batch_number) name a batch or a checkpoint by one
-- number, and the chain registry's numbers keep increasing across the migration.
CREATE TABLE log_checkpoint (
  number           bigint      PRIMARY KEY,
  tree_size        bigint      NOT NULL UNIQUE CHECK (tree_size >= 1),
  root_hash        bytea       NOT NULL CHECK (length(root_hash) = 32),
  -- The checkpoint text the log signed, and its signature line ("— <origin> <base64>\n").
  text             text        NOT NULL,
  signature        text        NOT NULL,
  -- Lowercase hex SHA-256 of text: what the next checkpoint's previous line and the chain registry hold.
  checkpoint_hash  text        NOT NULL UNIQUE,
  -- The log's verifier key (<origin>+<key id>+<base64>), so readers need not hold the signing key.
  log_key          text        NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- Witness cosignatures (C2SP tlog-cosignature), one line per witness key per checkpoint, verified before storing.
CREATE TABLE log_cosignature (
  tree_size    bigint      NOT NULL REFERENCES log_checkpoint (tree_size),
  witness      text        NOT NULL,
  line         text        NOT NULL,
  signed_at    bigint      NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tree_size, witness)
);

-- Chain anchors now name checkpoints as well as the old batches; the claim is the anchor claim note the log key
-- signs once the anchor is confirmed (checkpoints only).
ALTER TABLE ledger_anchor DROP CONSTRAINT IF EXISTS ledger_anchor_batch_number_fkey;
ALTER TABLE ledger_anchor ADD COLUMN claim text;
