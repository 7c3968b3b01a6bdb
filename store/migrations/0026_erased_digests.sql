-- 0026_erased_digests: what an erased message keeps of its hashes.
--
-- An erasure destroys the keys a message's bytes are sealed under, but raw_sha256 (and, for a DICOM instance,
-- blob_sha256) stayed the plain SHA-256 of those bytes: whoever reads the table could confirm a guess of the erased
-- message by hashing it. Both are what recognises a resend, so they are replaced, not removed: by HMAC-SHA-256 under
-- the search index key over a domain and the hash (store/blind-index.ts erasedDigest), which a resend's hash still
-- gives. digests_keyed says which rows hold keyed digests; an erasure keys every row under a destroyed key, those of
-- erasures made before this migration included.
ALTER TABLE inbox_message ADD COLUMN digests_keyed boolean NOT NULL DEFAULT false;
