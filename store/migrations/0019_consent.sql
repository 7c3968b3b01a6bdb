-- 0019_consent: every write of a Consent version, by whatever path (the FHIR write route, the ingest worker mapping
-- an HL7 v2 CON segment or a C-CDA advance directive, a patient merge re-pointing a consent), announces the patient
-- it is about on a NOTIFY channel, inside the writing transaction: the API's consent caches (store/consents.ts) drop
-- that patient's consents when it commits. A trigger rather than a NOTIFY in each writer, so that no writer can
-- forget it. The channel is per schema ('anchorline_consent_<schema>', or a digest of a schema name too long for a
-- channel), as the queue's is: deployments and tests sharing a database do not invalidate each other's caches. The
-- payload is the patient reference ('Patient/<id>'), and the previous version's patient as well when a version moved
-- the consent to another patient; '' when a version names none.
CREATE FUNCTION anchorline_consent_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  channel text := 'anchorline_consent_' || TG_TABLE_SCHEMA;
  patient text := coalesce(NEW.content #>> '{patient,reference}', '');
  previous text;
BEGIN
  IF octet_length(channel) > 63 THEN
    channel := 'anchorline_consent_' || left(encode(sha256(convert_to(TG_TABLE_SCHEMA, 'UTF8')), 'hex'), 32);
  END IF;
  PERFORM pg_notify(channel, patient);
  IF NEW.version_id > 1 THEN
    EXECUTE format('SELECT coalesce(content #>> ''{patient,reference}'', '''') FROM %I.fhir_resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3', TG_TABLE_SCHEMA)
      INTO previous USING NEW.resource_type, NEW.id, NEW.version_id - 1;
    IF previous IS NOT NULL AND previous <> patient THEN
      PERFORM pg_notify(channel, previous);
    END IF;
  END IF;
  RETURN NULL;
END
$$;

-- WHEN keeps every other type's insert free of the trigger's cost: the condition is checked per row, the function
-- runs only for Consents.
CREATE TRIGGER fhir_resource_history_consent_notify
  AFTER INSERT ON fhir_resource_history
  FOR EACH ROW WHEN (NEW.resource_type = 'Consent')
  EXECUTE FUNCTION anchorline_consent_notify();
