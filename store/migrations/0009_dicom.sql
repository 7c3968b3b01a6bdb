-- 0009_dicom: DICOM instances in the message store.
--
-- A DICOM instance is an inbox message like any other (protocol 'dicom', control id = its SOP Instance UID, raw =
-- its bytes up to the pixel data). The whole instance, pixel data included, lives in the blob store, named by its
-- SHA-256; blob_sha256 records that name, so the message's row says which file it came with. NULL for messages
-- that have no blob (HL7 v2, C-CDA, and DICOM instances refused before they were stored).
ALTER TABLE inbox_message ADD COLUMN blob_sha256 bytea CHECK (blob_sha256 IS NULL OR octet_length(blob_sha256) = 32);

-- Which messages brought a blob: for serving it and for auditing the blob store against the rows.
CREATE INDEX inbox_message_blob ON inbox_message (blob_sha256) WHERE blob_sha256 IS NOT NULL;
