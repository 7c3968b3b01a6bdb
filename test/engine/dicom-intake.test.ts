/**
 * DICOM instances through a real engine: DicomIntake.accept on the engine's own pool, queue and blob store, then the
 * ingest worker, the FHIR store and the ledger, as the DIMSE listener and STOW-RS use it.
 *
 * One study (CT series 1: three instances in implicit, explicit and deflated little endian; MR series 2: big endian
 * and JPEG) arrives one instance at a time, with broken inputs in between; its patient was admitted over HL7 first.
 * Encryption at rest is on (the default): each instance file is sealed under its message's key.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomAcceptResult, DicomIntake } from '../../adapters/dicom/intake.ts';
import { ERROR_CATALOGUE } from '../../errors/index.ts';
import { DICOM_BLOB_EXTENSION_URL, imagingStudyId } from '../../mappers/index.ts';
import { auditLedger } from '../../store/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const STUDY_UID = '2.25.1000000001';
const MAX_INSTANCE_BYTES = 16 * 1024 * 1024;
/** Arrival order: neither series nor instance order, so the merge must sort. */
const GOOD = ['ct-2', 'mr-1', 'ct-1', 'ct-3', 'mr-2'];

let t: TestEngine;
let intake: DicomIntake;

async function get(url: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  expect(response.status, url).toBe(200);
  return response.json();
}

async function messageState(id: number): Promise<string> {
  return (await t.pool.query<{ state: string }>('SELECT state FROM inbox_message WHERE id = $1', [id])).rows[0]!.state;
}

async function accept(name: string, bytes = fixture(name)): Promise<DicomAcceptResult> {
  return intake.accept(bytes, { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY1' });
}

async function studyHistory(): Promise<any[]> {
  const bundle = await get(`/fhir/ImagingStudy/${imagingStudyId(STUDY_UID)}/_history`);
  return (bundle.entry ?? []).map((entry: any) => entry.resource).sort((a: any, b: any) => Number(a.meta.versionId) - Number(b.meta.versionId));
}

const results = new Map<string, DicomAcceptResult>();
let hl7PatientId: string;

beforeAll(async () => {
  t = await startTestEngine({ overrides: { dicom: { maxInstanceBytes: MAX_INSTANCE_BYTES }, anchor: { closeAfterMs: 200 } } });
  intake = t.engine.dicomIntake!;

  // The HIS admits the patient first; the PACS later names the same patient (SEOUL0001 issued by SEOULGEN).
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId: 'DICOM-ADT-1', mrn: 'SEOUL0001', facility: 'SEOULGEN', family: 'Hong', given: 'Gildong', gender: 'M' }));
  await client.close();
  hl7PatientId = await eventually(async () => (await get('/fhir/Patient?identifier=SEOUL0001')).entry?.[0]?.resource?.id as string | undefined, 20_000, 'the HL7 patient');

  // Broken inputs first, then each good instance once the previous one is mapped (so each makes its own version),
  // with more broken inputs in between.
  for (const bad of ['truncated', 'no-dicm-prefix', 'bad-uid-traversal']) results.set(bad, await accept(bad));
  for (const [n, name] of GOOD.entries()) {
    const result = await accept(name);
    results.set(name, result);
    if (result.status !== 'stored') throw new Error(`${name} was not stored: ${JSON.stringify(result)}`);
    await eventually(async () => (await messageState(result.messageId)) !== 'queued', 20_000, `${name} mapped`);
    if (n === 1) for (const bad of ['length-past-end', 'pixel-length-past-end', 'deflate-bomb', 'unsupported-transfer-syntax']) results.set(bad, await accept(bad));
  }
});

afterAll(async () => {
  await t?.destroy();
});

describe('DICOM intake through the engine', () => {
  it('stores every good instance and maps it', async () => {
    for (const name of GOOD) {
      const result = results.get(name)!;
      expect(result, name).toMatchObject({ status: 'stored', studyInstanceUid: STUDY_UID });
      expect(await messageState((result as { messageId: number }).messageId), name).toBe('done');
    }
    const rows = (await t.pool.query(`SELECT protocol, sender, control_id, message_type, raw_size, octet_length(raw) AS raw_bytes, raw_truncated FROM inbox_message WHERE id = $1`, [(results.get('ct-1') as { messageId: number }).messageId])).rows[0];
    expect(rows).toMatchObject({ protocol: 'dicom', sender: 'MODALITY1', control_id: '2.25.1000000001.1.1', message_type: 'DICOM^1.2.840.10008.5.1.4.1.1.2', raw_size: fixture('ct-1').length, raw_truncated: true });
    // The raw bytes are the header: everything before the pixel data.
    expect(rows.raw_bytes).toBeLessThan(fixture('ct-1').length);
  });

  it('makes one ImagingStudy whose versions grow instance by instance', async () => {
    const history = await studyHistory();
    expect(history.map((version) => version.numberOfInstances)).toEqual([1, 2, 3, 4, 5]);
    expect(history.map((version) => version.numberOfSeries)).toEqual([1, 2, 2, 2, 2]);
    const last = history.at(-1);
    expect(last.identifier[0]).toEqual({ system: 'urn:dicom:uid', value: `urn:oid:${STUDY_UID}` });
    expect(last.status).toBe('available');
    expect(last.modality.map((m: any) => m.code)).toEqual(['CT', 'MR']);
    expect(last.series.map((s: any) => [s.uid, s.number, s.modality.code, s.bodySite.code, s.numberOfInstances])).toEqual([
      ['2.25.1000000001.1', 1, 'CT', '69536005', 3],
      ['2.25.1000000001.2', 2, 'MR', '12738006', 2],
    ]);
    // Sorted by instance number whatever the arrival order.
    expect(last.series[0].instance.map((i: any) => i.uid)).toEqual(['2.25.1000000001.1.1', '2.25.1000000001.1.2', '2.25.1000000001.1.3']);
    expect(last.series[1].instance.map((i: any) => i.sopClass.code)).toEqual(['urn:oid:1.2.840.10008.5.1.4.1.1.4', 'urn:oid:1.2.840.10008.5.1.4.1.1.4']);
    const endpoint = await get(`/${last.endpoint[0].reference.replace(/^/, 'fhir/')}`);
    expect(endpoint).toMatchObject({ resourceType: 'Endpoint', status: 'active', connectionType: { code: 'dicom-wado-rs' } });
    // Searchable like the other clinical types.
    const found = await get(`/fhir/ImagingStudy?patient=Patient/${hl7PatientId}&modality=MR`);
    expect(found.entry.map((e: any) => e.resource.id)).toEqual([imagingStudyId(STUDY_UID)]);
  });

  it('names the same Patient as the HL7 ADT, without overwriting what the HIS sent', async () => {
    const [last] = (await studyHistory()).slice(-1);
    expect(last.subject).toEqual({ reference: `Patient/${hl7PatientId}` });
    const patientHistory = await get(`/fhir/Patient/${hl7PatientId}/_history`);
    // The instances added nothing the ADT had not: no second version.
    expect(patientHistory.entry).toHaveLength(1);
    const patient = patientHistory.entry[0].resource;
    expect(patient.identifier.filter((i: any) => i.value === 'SEOUL0001')).toHaveLength(1);
    expect(patient.name).toEqual([expect.objectContaining({ family: 'Hong', given: ['Gildong'] })]);
  });

  it('keeps each instance sealed in the blob store under the SHA-256 of the sealed file, reachable from the ImagingStudy', async () => {
    const [last] = (await studyHistory()).slice(-1);
    const blobDir = path.join(t.config.dataDir, 'blobs');
    const bySop = new Map<string, string>();
    for (const series of last.series) {
      for (const instance of series.instance) {
        const extension = instance.extension.find((e: any) => e.url === DICOM_BLOB_EXTENSION_URL);
        bySop.set(instance.uid, extension.valueString);
      }
    }
    for (const name of GOOD) {
      const bytes = fixture(name);
      const digest = sha256(bytes);
      // The ImagingStudy and the row name the instance as received; the file is named by what it holds, sealed.
      expect([...bySop.values()], name).toContain(digest);
      const messageId = (results.get(name) as { messageId: number }).messageId;
      const row = (await t.pool.query<{ blob_sha256: Buffer; blob_sealed_sha256: Buffer; raw_key: Buffer | null }>('SELECT blob_sha256, blob_sealed_sha256, raw_key FROM inbox_message WHERE id = $1', [messageId])).rows[0]!;
      expect(row.blob_sha256.toString('hex')).toBe(digest);
      expect(row.raw_key, name).toBeInstanceOf(Buffer);
      const sealedName = row.blob_sealed_sha256.toString('hex');
      expect(existsSync(path.join(blobDir, digest.slice(0, 2), digest.slice(2, 4), digest)), name).toBe(false);
      const stored = await readFile(path.join(blobDir, sealedName.slice(0, 2), sealedName.slice(2, 4), sealedName));
      expect(sha256(stored), name).toBe(sealedName);
      expect(stored.length, name).toBe(bytes.length + 29);
      // None of the header's names and identifiers is in it as sent.
      for (const text of ['Hong^Gildong', 'SEOUL0001', 'SEOULGEN', '2.25.1000000001.1']) expect(stored.includes(Buffer.from(text, 'latin1')), `${name}: ${text}`).toBe(false);
      // Read back as sent, by the digest the ImagingStudy records.
      const blob = await fetch(`${t.httpUrl}/blobs/${digest}`, { headers: authHeaders() });
      expect(blob.status, name).toBe(200);
      expect(Buffer.from(await blob.arrayBuffer()).equals(bytes), name).toBe(true);
    }
    // Nothing but digests under the blob directory, one file per message, and nothing where the path-shaped UID pointed.
    const names = readdirSync(blobDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => entry.name);
    for (const name of names) expect(name).toMatch(/^[0-9a-f]{64}$/);
    expect(names).toHaveLength(GOOD.length);
    expect(existsSync('/tmp/anchorline-escape')).toBe(false);
  });

  it('refuses each broken input with its code, records it, queues nothing for it, and leaves the study whole', async () => {
    const expected: Record<string, string> = {
      truncated: 'ANCHORLINE_ERR_DICOM_TRUNCATED',
      'no-dicm-prefix': 'ANCHORLINE_ERR_DICOM_MALFORMED',
      'bad-uid-traversal': 'ANCHORLINE_ERR_DICOM_BAD_UID',
      'length-past-end': 'ANCHORLINE_ERR_DICOM_TRUNCATED',
      'pixel-length-past-end': 'ANCHORLINE_ERR_DICOM_TRUNCATED',
      'deflate-bomb': 'ANCHORLINE_ERR_DICOM_TOO_LARGE',
      'unsupported-transfer-syntax': 'ANCHORLINE_ERR_DICOM_UNSUPPORTED',
    };
    for (const [name, code] of Object.entries(expected)) {
      const result = results.get(name)!;
      expect(result, name).toMatchObject({ status: 'rejected', errorCode: code });
      // Permanent: a sender told so has no reason to resend, and no job retries it.
      expect(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].retryable, name).toBe(false);
      const messageId = (result as { messageId: number }).messageId;
      const row = (await t.pool.query('SELECT disposition, state, error_code, blob_sha256 FROM inbox_message WHERE id = $1', [messageId])).rows[0];
      expect(row, name).toEqual({ disposition: 'rejected', state: 'rejected', error_code: code, blob_sha256: null });
    }
    const jobs = (await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE protocol = 'dicom' AND disposition = 'rejected' AND attempts > 0`)).rows[0]!;
    expect(jobs.n).toBe(0);
    expect((await studyHistory()).at(-1).numberOfInstances).toBe(GOOD.length);
  });

  it('answers a resend with identical bytes as a duplicate, with no second effect', async () => {
    const before = (await studyHistory()).length;
    const original = results.get('ct-1') as { messageId: number };
    const again = await accept('ct-1');
    expect(again).toMatchObject({ status: 'duplicate', messageId: original.messageId, sopInstanceUid: '2.25.1000000001.1.1' });
    const rows = (await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE control_id = '2.25.1000000001.1.1'`)).rows[0]!;
    expect(rows.n).toBe(1);
    // The resend was sealed under a key of its own before it was found a duplicate; that copy is gone again.
    const files = readdirSync(path.join(t.config.dataDir, 'blobs'), { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    expect(files).toHaveLength(GOOD.length);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await studyHistory()).length).toBe(before);
  });

  it('refuses the same SOP Instance UID with other pixel data as a conflict, keeping the first', async () => {
    const changed = Buffer.from(fixture('ct-1'));
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 0xff;
    const result = await accept('ct-1', changed);
    expect(result).toMatchObject({ status: 'rejected', errorCode: 'ANCHORLINE_ERR_DUPLICATE_CONTROL_ID', sopInstanceUid: '2.25.1000000001.1.1' });
    const row = (await t.pool.query('SELECT disposition FROM inbox_message WHERE id = $1', [(result as { messageId: number }).messageId])).rows[0];
    expect(row).toEqual({ disposition: 'conflict' });
  });

  it('reads an EUC-KR name sent without escapes as Korean', async () => {
    const result = await accept('cr-euckr-no-escape');
    expect(result.status).toBe('stored');
    await eventually(async () => (await messageState((result as { messageId: number }).messageId)) === 'done', 20_000, 'CR mapped');
    const patient = (await get('/fhir/Patient?identifier=SEOUL0002')).entry[0].resource;
    expect(patient.name[0]).toMatchObject({ family: '김', given: ['철수'] });
    const stored = (await t.pool.query<{ charset: string }>('SELECT charset FROM inbox_message WHERE id = $1', [(result as { messageId: number }).messageId])).rows[0]!;
    expect(stored.charset).toBe('cp949');
  });

  it('leaves an audit with nothing to report', async () => {
    await eventually(async () => {
      const { rows } = await t.pool.query<{ queued: number; waiting: number }>(
        `SELECT (SELECT count(*)::int FROM inbox_message WHERE state = 'queued') AS queued,
                (SELECT count(*)::int FROM ledger_leaf WHERE batch_number IS NULL) AS waiting`,
      );
      return rows[0]!.queued === 0 && rows[0]!.waiting === 0;
    }, 20_000, 'mapping and a closed batch');
    const report = await auditLedger(t.pool);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checked['raw-message']).toBeGreaterThanOrEqual(GOOD.length + 1);
  });
});
