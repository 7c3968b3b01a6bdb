/**
 * DICOM instance files sealed at rest, through the real engine with encryption on: an instance's file holds none of
 * its header's names in plaintext and is named by the SHA-256 of what it holds, while WADO-RS and /blobs return the
 * bytes as sent and the worker maps it (moving the message's key under the patient's); a patient key rotation and a
 * master key rotation re-wrap keys only, and every file still opens unchanged; erasing a patient removes their files,
 * reads answer 410 ANCHORLINE_ERR_ERASED, every other proof still verifies, and `anchorline audit` counts the erased
 * files apart from mismatches (also a file left on disk, and an instance stored plain before files were sealed).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLogBundle } from '../../anchor/index.ts';
import { dicomBlobStore } from '../../cli/engine.ts';
import { imagingStudyId } from '../../mappers/index.ts';
import { erasePatient, FileKms, keyringOf, retireMasterKey, rewrapMasterKeys, rotatePatientKey, type BlobStore, type Keyring } from '../../store/index.ts';
import { auditEngine } from '../support/audit-output.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, `${name}.dcm`));
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** mr-1 made another patient's (SEOUL0003, Jang^Hyunwoo) in another study: every value replaced by one as long. */
function otherPatientsInstance(): Buffer {
  let bytes = fixture('mr-1');
  for (const [from, to] of [['2.25.1000000001', '2.25.1000000003'], ['SEOUL0001', 'SEOUL0003'], ['Hong^Gildong', 'Jang^Hyunwoo']] as const) {
    bytes = Buffer.from(bytes.toString('latin1').replaceAll(from, to), 'latin1');
  }
  return bytes;
}

/** The instances: by name, their bytes, study, series and SOP Instance UIDs, and the patient's identifier. */
const INSTANCES = {
  // Patient SEOUL0001 (erased through the API, with their files).
  ct1: { bytes: fixture('ct-1'), study: '2.25.1000000001', series: '2.25.1000000001.1', sop: '2.25.1000000001.1.1', mrn: 'SEOUL0001', text: ['Hong^Gildong', 'SEOUL0001'] },
  ct2: { bytes: fixture('ct-2'), study: '2.25.1000000001', series: '2.25.1000000001.1', sop: '2.25.1000000001.1.2', mrn: 'SEOUL0001', text: ['Hong^Gildong', 'SEOUL0001'] },
  // Patient SEOUL0002 (kept; their key rotates).
  cr: { bytes: fixture('cr-euckr-no-escape'), study: '2.25.1000000002', series: '2.25.1000000002.1', sop: '2.25.1000000002.1.1', mrn: 'SEOUL0002', text: ['SEOUL0002', '19750615'] },
  // Patient SEOUL0003 (erased by a tool without the blob store: the file stays, unreadable).
  mr: { bytes: otherPatientsInstance(), study: '2.25.1000000003', series: '2.25.1000000003.2', sop: '2.25.1000000003.2.1', mrn: 'SEOUL0003', text: ['Jang^Hyunwoo', 'SEOUL0003'] },
};
type InstanceName = keyof typeof INSTANCES;

let t: TestEngine;
let blobs: BlobStore;
let keyring: Keyring;
const messageIds = {} as Record<InstanceName, number>;

async function get(url: string): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json().catch(() => undefined), code: response.headers.get('x-anchorline-error') };
}

/** GET /blobs/{sha256} of an instance: status, error code and bytes. */
async function blob(name: InstanceName | Buffer): Promise<{ status: number; code: string | null; bytes: Buffer }> {
  const digest = sha256(Buffer.isBuffer(name) ? name : INSTANCES[name].bytes);
  const response = await fetch(`${t.httpUrl}/blobs/${digest}`, { headers: authHeaders() });
  return { status: response.status, code: response.headers.get('x-anchorline-error'), bytes: Buffer.from(await response.arrayBuffer()) };
}

/** WADO-RS retrieve of one instance: status, error code, and the one part's bytes when 200. */
async function wado(name: InstanceName): Promise<{ status: number; code: string | null; parts: Buffer[] }> {
  const { study, series, sop } = INSTANCES[name];
  const response = await fetch(`${t.httpUrl}/dicomweb/studies/${study}/series/${series}/instances/${sop}`, { headers: authHeaders() });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { status: response.status, code: response.headers.get('x-anchorline-error'), parts: [] };
  const boundary = /boundary=([^;]+)/.exec(response.headers.get('content-type')!)![1]!;
  const parts: Buffer[] = [];
  for (const piece of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
    const part = Buffer.from(piece, 'latin1');
    parts.push(part.subarray(part.indexOf('\r\n\r\n') + 4, part.length - 2));
  }
  return { status: response.status, code: null, parts };
}

/** The inbox row of an instance's message: its blob names and where its key is wrapped. */
async function rowOf(name: InstanceName): Promise<{ blob_sha256: Buffer; blob_sealed_sha256: Buffer | null; raw_kek: string | null; raw_key_id: number | null }> {
  return (await t.pool.query('SELECT blob_sha256, blob_sealed_sha256, raw_kek, raw_key_id FROM inbox_message WHERE id = $1', [messageIds[name]])).rows[0];
}

/** Where the blob store keeps a file. */
function fileOf(name: Buffer | string): string {
  const hex = Buffer.isBuffer(name) ? name.toString('hex') : name;
  return path.join(t.config.dataDir, 'blobs', hex.slice(0, 2), hex.slice(2, 4), hex);
}

async function patientIdOf(mrn: string): Promise<string> {
  return eventually(async () => (await get(`/fhir/Patient?identifier=${mrn}`)).body?.entry?.[0]?.resource?.id as string | undefined, 20_000, `Patient ${mrn}`);
}

async function proof(type: string, id: string, vid = 1): Promise<any> {
  return eventually(async () => {
    const { status, body } = await get(`/proofs/${type}/${id}/_history/${vid}`);
    return status === 200 ? body : undefined;
  }, 20_000, `proof of ${type}/${id}`);
}

const audit = (): ReturnType<typeof auditEngine> => auditEngine(t);

async function accept(name: InstanceName, bytes = INSTANCES[name].bytes): Promise<number> {
  const result = await t.engine.dicomIntake!.accept(bytes, { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY1' });
  if (result.status !== 'stored' && result.status !== 'duplicate') throw new Error(`${name} was not stored: ${JSON.stringify(result)}`);
  return result.messageId;
}

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 }, encryption: { enabled: true } } });
  blobs = dicomBlobStore(t.config);
  keyring = keyringOf(t.pool)!;
  for (const name of Object.keys(INSTANCES) as InstanceName[]) {
    messageIds[name] = await accept(name);
    await eventually(async () => (await t.pool.query('SELECT state FROM inbox_message WHERE id = $1', [messageIds[name]])).rows[0].state === 'done', 20_000, `${name} mapped`);
  }
});

afterAll(async () => {
  await t?.destroy();
});

describe('DICOM instance files sealed at rest', () => {
  it("seals each file under its message's key, with no header text on disk, and serves it as sent", async () => {
    for (const [name, instance] of Object.entries(INSTANCES) as Array<[InstanceName, (typeof INSTANCES)[InstanceName]]>) {
      const row = await rowOf(name);
      expect(row.blob_sha256.toString('hex'), name).toBe(sha256(instance.bytes));
      // Mapped: the message's key (and with it the file's) is now under the patient's key.
      expect(row, name).toMatchObject({ raw_kek: null, raw_key_id: expect.any(Number) });
      const stored = await readFile(fileOf(row.blob_sealed_sha256!));
      expect(sha256(stored), name).toBe(row.blob_sealed_sha256!.toString('hex'));
      for (const text of instance.text) expect(stored.includes(Buffer.from(text, 'latin1')), `${name}: ${text}`).toBe(false);
      // Nothing on disk is named by the instance's own digest, which would confirm a guess of it.
      expect(existsSync(fileOf(row.blob_sha256)), name).toBe(false);

      const served = await blob(name);
      expect([served.status, served.bytes.equals(instance.bytes)], name).toEqual([200, true]);
      const retrieved = await wado(name);
      expect(retrieved.status, name).toBe(200);
      expect(retrieved.parts.map((part) => part.equals(instance.bytes)), name).toEqual([true]);
    }
    // The worker mapped each instance into its patient's ImagingStudy.
    const study = (await get(`/fhir/ImagingStudy/${imagingStudyId('2.25.1000000001')}`)).body;
    expect(study.numberOfInstances).toBe(2);
    expect(study.subject.reference).toBe(`Patient/${await patientIdOf('SEOUL0001')}`);
  });

  it("keeps every file readable, unchanged on disk, through a rotation of the patient's key", async () => {
    const patient = `Patient/${await patientIdOf('SEOUL0002')}`;
    const before = await rowOf('cr');
    const file = await readFile(fileOf(before.blob_sealed_sha256!));
    const report = await rotatePatientKey(t.pool, patient, { readerGraceMs: 0 });
    expect(report.messages).toBeGreaterThanOrEqual(1);
    expect(report.destroyedKeys).toBe(1);
    const after = await rowOf('cr');
    expect(after.raw_key_id).toBe(report.keyId);
    expect(after.raw_key_id).not.toBe(before.raw_key_id);
    // Only the message key was re-wrapped: the file is the same file.
    expect(after.blob_sealed_sha256).toEqual(before.blob_sealed_sha256);
    expect((await readFile(fileOf(after.blob_sealed_sha256!))).equals(file)).toBe(true);
    keyring.forget([Number(before.raw_key_id), report.keyId]);
    expect((await blob('cr')).bytes.equals(INSTANCES.cr.bytes)).toBe(true);
    expect((await wado('cr')).parts[0]!.equals(INSTANCES.cr.bytes)).toBe(true);
  });

  it("keeps every file readable through a rotation of the master key, also one whose message key is still under it", async () => {
    // A conflicting instance (same SOP Instance UID, other pixel data) is kept for review and never mapped: its key
    // stays wrapped under the master key.
    const changed = Buffer.from(INSTANCES.cr.bytes);
    changed[changed.length - 1]! ^= 0xff;
    const result = await t.engine.dicomIntake!.accept(changed, { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY1' });
    expect(result).toMatchObject({ status: 'rejected', errorCode: 'ANCHORLINE_ERR_DUPLICATE_CONTROL_ID' });
    const conflict = (await t.pool.query('SELECT raw_kek, blob_sealed_sha256 FROM inbox_message WHERE id = $1', [(result as { messageId: number }).messageId])).rows[0];
    expect(conflict.raw_kek).toEqual(expect.any(String));
    expect(conflict.blob_sealed_sha256).toBeInstanceOf(Buffer);
    expect((await blob(changed)).bytes.equals(changed)).toBe(true);

    const kms = keyring.kms as FileKms;
    const old = kms.currentKeyId;
    await kms.rotate();
    const report = await rewrapMasterKeys(t.pool, keyring);
    expect(report).toMatchObject({ remaining: 0 });
    expect(report.messageKeys).toBeGreaterThanOrEqual(1);
    await retireMasterKey(t.pool, kms, old);
    keyring.forget([...Array(1000).keys()]);
    expect((await blob(changed)).bytes.equals(changed)).toBe(true);
    for (const name of Object.keys(INSTANCES) as InstanceName[]) expect((await blob(name)).bytes.equals(INSTANCES[name].bytes), name).toBe(true);
  });

  it('reads an instance stored plain before files were sealed, as before', async () => {
    // ct-2's row made as one from before: no sealed name, and the instance plain under its own digest.
    const row = await rowOf('ct2');
    await blobs.put(INSTANCES.ct2.bytes);
    await t.pool.query('UPDATE inbox_message SET blob_sealed_sha256 = NULL WHERE id = $1', [messageIds.ct2]);
    await blobs.delete(row.blob_sealed_sha256!.toString('hex'));
    expect((await readFile(fileOf(row.blob_sha256))).equals(INSTANCES.ct2.bytes)).toBe(true);
    expect((await blob('ct2')).bytes.equals(INSTANCES.ct2.bytes)).toBe(true);
    expect((await wado('ct2')).parts[0]!.equals(INSTANCES.ct2.bytes)).toBe(true);
    const { exit, report } = await audit();
    expect(report.findings).toEqual([]);
    expect(exit).toBe(0);
  });

  it('erases a patient: their files are removed and read as erased, every other proof verifies, and the audit stays clean', async () => {
    const erasedId = await patientIdOf('SEOUL0001');
    const keptId = await patientIdOf('SEOUL0002');
    const studyBefore = await proof('ImagingStudy', imagingStudyId('2.25.1000000001'));
    const keptBefore = await proof('ImagingStudy', imagingStudyId('2.25.1000000002'));
    const sealedFile = fileOf((await rowOf('ct1')).blob_sealed_sha256!);
    expect(existsSync(sealedFile)).toBe(true);

    const response = await fetch(`${t.httpUrl}/admin/patients/${erasedId}/$erase`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'request 2026-31' }),
    });
    expect(response.status).toBe(200);
    // Both messages erased; ct-1's file was sealed, ct-2's is the plain one from before: both are removed.
    expect(await response.json()).toMatchObject({ patient: `Patient/${erasedId}`, messages: 2, blobs: 2 });
    expect(existsSync(sealedFile)).toBe(false);
    // The plain file named by its content's SHA-256 is gone; the row keeps only a keyed digest of that SHA-256.
    const plainName = createHash('sha256').update(INSTANCES.ct2.bytes).digest();
    expect(existsSync(fileOf(plainName))).toBe(false);
    expect((await rowOf('ct2')).blob_sha256.equals(plainName)).toBe(false);

    for (const name of ['ct1', 'ct2'] as const) {
      const served = await blob(name);
      expect([served.status, served.code], name).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
      const retrieved = await wado(name);
      expect([retrieved.status, retrieved.code], name).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    }
    expect((await blob('cr')).bytes.equals(INSTANCES.cr.bytes)).toBe(true);
    expect((await get(`/proofs/ImagingStudy/${imagingStudyId('2.25.1000000001')}/_history/1`)).status).toBe(410);
    expect(verifyLogBundle(studyBefore).ok).toBe(true);
    expect(verifyLogBundle(keptBefore).ok).toBe(true);
    expect(verifyLogBundle(await proof('ImagingStudy', imagingStudyId('2.25.1000000002'))).ok).toBe(true);
    expect(verifyLogBundle(await proof('Patient', keptId)).ok).toBe(true);

    const { exit, report } = await audit();
    expect(report.findings).toEqual([]);
    expect(exit).toBe(0);
    expect(report.erased).toMatchObject({ messages: 2, blobs: 2 });
  });

  it('erases a patient without the blob store at hand: the file stays on disk, unreadable, and the audit stays clean', async () => {
    const patient = `Patient/${await patientIdOf('SEOUL0003')}`;
    const sealedFile = fileOf((await rowOf('mr')).blob_sealed_sha256!);
    const report = await erasePatient(t.pool, { patient, actor: { kind: 'sender', id: 'test', name: 'test' } });
    expect(report).toMatchObject({ messages: 1, blobs: 1 });
    expect(existsSync(sealedFile)).toBe(true);
    const served = await blob('mr');
    expect([served.status, served.code]).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    const { exit, report: audited } = await audit();
    expect(audited.findings).toEqual([]);
    expect(exit).toBe(0);
    expect(audited.erased).toMatchObject({ messages: 3, blobs: 3 });
  });

  it('keeps a plain file from before sealing when a message that is not erased names the same bytes', async () => {
    // cr's instance made plain as ct-2's was, and the same bytes received again from another AE title, a row under no
    // patient key: erasing SEOUL0002 must not take the file that row still names.
    const row = await rowOf('cr');
    await blobs.put(INSTANCES.cr.bytes);
    await t.pool.query('UPDATE inbox_message SET blob_sealed_sha256 = NULL WHERE id = $1', [messageIds.cr]);
    await blobs.delete(row.blob_sealed_sha256!.toString('hex'));
    await t.pool.query(
      `INSERT INTO inbox_message (protocol, source, sender, control_id, message_type, raw, raw_sha256, raw_size, blob_sha256, disposition, state, charset)
       SELECT protocol, source, 'OTHER-AE', control_id, message_type, raw, raw_sha256, raw_size, blob_sha256, disposition, 'done', charset FROM inbox_message WHERE id = $1`,
      [messageIds.cr],
    );
    const report = await erasePatient(t.pool, { patient: `Patient/${await patientIdOf('SEOUL0002')}`, actor: { kind: 'sender', id: 'test', name: 'test' } }, { blobs });
    expect(report).toMatchObject({ blobs: 0 });
    expect(existsSync(fileOf(row.blob_sha256))).toBe(true);
  });
});
