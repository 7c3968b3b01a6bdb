-- 0020_encryption_at_rest: per-patient data keys (store/keys.ts), resource versions and raw messages sealed under
-- them, and what an erasure (crypto-shredding) leaves of a patient's records.

-- One data key per patient and key version, wrapped by the master key (store/kms.ts; kek_id names which master key).
-- Destroying a key (erasure) empties wrapped_dek and sets destroyed_at: every row sealed under it, in this database
-- and in every backup of it, is then unreadable. A patient's later records get a new key version.
CREATE TABLE patient_key (
  id            bigserial   PRIMARY KEY,
  patient       text        NOT NULL,
  key_version   integer     NOT NULL CHECK (key_version >= 1),
  wrapped_dek   bytea,
  kek_id        text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  destroyed_at  timestamptz,
  UNIQUE (patient, key_version),
  CHECK ((destroyed_at IS NULL) = (wrapped_dek IS NOT NULL) AND (wrapped_dek IS NULL) = (kek_id IS NULL))
);
-- Master key rotation re-wraps the keys a retiring master key wrapped.
CREATE INDEX patient_key_kek ON patient_key (kek_id) WHERE kek_id IS NOT NULL;

-- A sealed version keeps content NULL and holds sealed (0x01 || nonce || AES-256-GCM ciphertext || tag of its JSON)
-- and key_id, the patient_key row it is sealed under. No foreign key: its check would lock the key row on every
-- insert, and a key row is never deleted, only destroyed.
ALTER TABLE fhir_resource_history ALTER COLUMN content DROP NOT NULL;
ALTER TABLE fhir_resource_history ADD COLUMN sealed bytea, ADD COLUMN key_id bigint;
ALTER TABLE fhir_resource_history ADD CONSTRAINT fhir_resource_history_sealed
  CHECK ((content IS NULL) = (sealed IS NOT NULL) AND (sealed IS NULL) = (key_id IS NULL));
-- Erasure finds a patient's sealed versions by their keys.
CREATE INDEX fhir_resource_history_key ON fhir_resource_history (key_id) WHERE key_id IS NOT NULL;

-- The view gains the sealed bytes and the key they need (NULL once destroyed); the join to patient_key is removed by
-- the planner for queries that read none of its columns.
CREATE OR REPLACE VIEW fhir_resource AS
  SELECT c.resource_type, c.id, c.version_id, c.last_updated, h.content, c.deleted, c.event_time,
         h.sealed, h.key_id, k.wrapped_dek AS key_wrapped, k.kek_id AS key_kek
    FROM fhir_current c
    JOIN fhir_resource_history h ON h.resource_type = c.resource_type AND h.id = c.id AND h.version_id = c.version_id
    LEFT JOIN patient_key k ON k.id = h.key_id;

-- A sealed raw message: raw holds the sealed bytes, raw_key the message's own key, wrapped under the master key
-- (raw_kek) at intake, and re-wrapped under its patient's key (raw_key_id) when the worker maps it; raw_sha256
-- stays the SHA-256 of the message as received.
ALTER TABLE inbox_message ADD COLUMN raw_key bytea, ADD COLUMN raw_kek text, ADD COLUMN raw_key_id bigint;
ALTER TABLE inbox_message ADD CONSTRAINT inbox_message_raw_key
  CHECK (raw_key IS NULL OR (raw_kek IS NULL) <> (raw_key_id IS NULL));
CREATE INDEX inbox_message_raw_key_id ON inbox_message (raw_key_id) WHERE raw_key_id IS NOT NULL;
CREATE INDEX inbox_message_raw_kek ON inbox_message (raw_kek) WHERE raw_kek IS NOT NULL;

-- An erased record's leaf keeps its leaf_hash (the log, its checkpoints and every other record's proof need only
-- that), but not its preimage: see store/erasure.ts for why. erased_at says when, and that it is no tampering.
ALTER TABLE ledger_leaf ALTER COLUMN preimage DROP NOT NULL;
ALTER TABLE ledger_leaf ADD COLUMN erased_at timestamptz;
ALTER TABLE ledger_leaf ADD CONSTRAINT ledger_leaf_erased CHECK ((preimage IS NULL) = (erased_at IS NOT NULL));

-- Erasures done: which patient, when, and the AuditEvent that records it.
CREATE TABLE patient_erasure (
  patient          text        NOT NULL,
  erased_at        timestamptz NOT NULL DEFAULT now(),
  audit_event_id   text        NOT NULL,
  versions         integer     NOT NULL,
  messages         integer     NOT NULL,
  PRIMARY KEY (patient, erased_at)
);
