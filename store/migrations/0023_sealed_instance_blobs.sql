-- 0023_sealed_instance_blobs: DICOM instance files sealed at rest under their message's key (store/instance-blobs.ts).
--
-- blob_sha256 stays the SHA-256 of the instance as received (what the ImagingStudy's blob extension records, what a
-- resend is compared by, and the associated data of the sealing). blob_sealed_sha256 is the SHA-256 of the sealed
-- file: its name in the blob store. It is set only where the file is sealed, under the key raw_key holds (the same
-- key as the row's raw bytes), so a row without it names a plain file, as every row did before this migration.
ALTER TABLE inbox_message ADD COLUMN blob_sealed_sha256 bytea;
ALTER TABLE inbox_message ADD CONSTRAINT inbox_message_blob_sealed
  CHECK (blob_sealed_sha256 IS NULL OR (octet_length(blob_sealed_sha256) = 32 AND blob_sha256 IS NOT NULL AND raw_key IS NOT NULL));

-- The audit reads sealed files by their names, in order, as it reads plain ones by blob_sha256 (0009).
CREATE INDEX inbox_message_blob_sealed ON inbox_message (blob_sealed_sha256) WHERE blob_sealed_sha256 IS NOT NULL;
