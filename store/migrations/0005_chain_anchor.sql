-- 0005_chain_anchor: anchoring batch headers on an EVM chain (the 'evm' anchor driver, workers/chain-anchor.ts).
-- One row per anchor transaction the engine signed, kept through its life: 'sent' (signed and recorded before it is
-- broadcast, so a crash right after sending can be reconciled from the chain), 'included' (a receipt names its
-- block), 'confirmed' (enough blocks followed and a re-check found it in the same place), or 'abandoned' (it can no
-- longer land: reverted, or its nonce went to another transaction; a new row takes over the batch). Batches need not
-- each be anchored: anchoring a header also fixes every earlier one through the header chain, so an engine that was
-- cut off from the chain anchors only its newest batch.

CREATE TABLE ledger_anchor (
  id             bigserial   PRIMARY KEY,
  batch_number   bigint      NOT NULL REFERENCES ledger_batch (batch_number),
  header_hash    text        NOT NULL,
  chain_id       bigint      NOT NULL,
  contract       text        NOT NULL,
  submitter      text        NOT NULL,
  state          text        NOT NULL CHECK (state IN ('sent', 'included', 'confirmed', 'abandoned')),
  nonce          bigint      NOT NULL,
  tx_hash        text        NOT NULL,
  raw_tx         text        NOT NULL,
  block_number   bigint,
  block_hash     text,
  -- The catalogue code of the last failure seen for this transaction (never a node's free text).
  last_error     text,
  sent_at        timestamptz NOT NULL DEFAULT now(),
  confirmed_at   timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
-- At most one live transaction per batch, and at most one in flight at all (the driver sends one at a time).
CREATE UNIQUE INDEX ledger_anchor_live_batch ON ledger_anchor (batch_number) WHERE state <> 'abandoned';
CREATE UNIQUE INDEX ledger_anchor_in_flight ON ledger_anchor ((true)) WHERE state IN ('sent', 'included');
CREATE INDEX ledger_anchor_confirmed ON ledger_anchor (batch_number) WHERE state = 'confirmed';
