/**
 * What erasure reaches beyond mapped records, through the real engine with encryption on: a Consent's FHIR REST
 * request body is sealed under its patient's key; a message that fails mapping, or maps to nothing new, for a patient
 * the store holds goes under that patient's key when the worker finishes it; messages refused at intake or failed
 * before their patient existed (HL7 v2, and a DICOM instance with its file) are found by the erasure's scan of the
 * messages still under the master key and erased with the patient, while one that names no one stays as it was. Reads
 * of them answer 410 ANCHORLINE_ERR_ERASED, proofs of other records verify, patient and master key rotations keep
 * every moved key readable, and `anchorline audit` counts them as erased, not as tampering.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLogBundle } from '../../anchor/index.ts';
import { blindIndexOf, FileKms, inbox, keyringOf, rewrapMasterKeys, rotatePatientKey, type Keyring } from '../../store/index.ts';
import { auditEngine } from '../support/audit-output.ts';
import { adtMessage } from '../support/messages.ts';
import { hl7Field, MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** mr-1 made the instance of a patient (SEOUL0009, issuer SEOULGEN) of a study of their own: each value as long as before. */
function instanceOfPatientNine(): Buffer {
  let bytes = readFileSync(path.join(FIXTURES, 'mr-1.dcm'));
  for (const [from, to] of [['2.25.1000000001', '2.25.1000000009'], ['SEOUL0001', 'SEOUL0009'], ['Hong^Gildong', 'Pyo^Eunsolim']] as const) {
    bytes = Buffer.from(bytes.toString('latin1').replaceAll(from, to), 'latin1');
  }
  return bytes;
}

let t: TestEngine;
let keyring: Keyring;
// Names no other fixture uses. A: a known patient; B: one who appears only after messages about them were refused.
const A = { mrn: 'ER1', family: 'Vantorrel', given: 'Oshkane' };
const B = { mrn: 'ER2', family: 'Quillmere', given: 'Daphreth' };
const KEPT = { mrn: 'ER3', family: 'Brastonel', given: 'Imrolda' };
let aId: string;
let keptId: string;
let consentId: string;
const dicomBytes = instanceOfPatientNine();

async function get(url: string): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json().catch(() => undefined), code: response.headers.get('x-anchorline-error') };
}

async function send(...messages: string[]): Promise<string[]> {
  const client = await MllpTestClient.connect(t.mllpPort);
  const acks: string[] = [];
  for (const message of messages) acks.push(await client.request(message));
  await client.close();
  return acks;
}

async function patientOf(mrn: string): Promise<string> {
  return eventually(async () => (await get(`/fhir/Patient?identifier=${mrn}`)).body?.entry?.[0]?.resource?.id as string | undefined, 20_000, `Patient ${mrn}`);
}

interface Row {
  id: number;
  state: string;
  error_code: string | null;
  error_detail: string | null;
  raw_kek: string | null;
  raw_key_id: number | null;
}

async function row(where: string, value: unknown): Promise<Row> {
  const { rows } = await t.pool.query(`SELECT id, state, error_code, error_detail, raw_kek, raw_key_id FROM inbox_message WHERE ${where} = $1`, [value]);
  expect(rows, `${where} = ${String(value)}`).toHaveLength(1);
  return { ...rows[0], id: Number(rows[0].id), raw_key_id: rows[0].raw_key_id === null ? null : Number(rows[0].raw_key_id) };
}

/** The row of a message once the worker has finished with it. */
async function finished(controlId: string): Promise<Row> {
  return eventually(async () => {
    const found = await row('control_id', controlId);
    return found.state === 'queued' ? undefined : found;
  }, 20_000, `${controlId} finished`);
}

/** The live key a patient's records are sealed under. */
async function liveKey(patientId: string): Promise<number> {
  const { rows } = await t.pool.query('SELECT id FROM patient_key WHERE patient = $1 AND destroyed_at IS NULL ORDER BY key_version DESC LIMIT 1', [`Patient/${patientId}`]);
  return Number(rows[0].id);
}

async function proof(type: string, id: string, vid = 1): Promise<any> {
  return eventually(async () => {
    const { status, body } = await get(`/proofs/${type}/${id}/_history/${vid}`);
    return status === 200 ? body : undefined;
  }, 20_000, `proof of ${type}/${id}`);
}

async function erase(patientId: string): Promise<any> {
  const response = await fetch(`${t.httpUrl}/admin/patients/${patientId}/$erase`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'request 2026-44' }) });
  expect(response.status).toBe(200);
  return response.json();
}

const audit = (): ReturnType<typeof auditEngine> => auditEngine(t);

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 }, encryption: { enabled: true } } });
  keyring = keyringOf(t.pool)!;
  // The organisation the Consent names is known to the engine through a clinician's account there.
  const account = { username: 'dr-er', role: 'practitioner', fhirUser: 'Practitioner/dr-er', displayName: 'Dr ER', organization: 'Organization/snuh', password: 'a-long-password-1' };
  const created = await fetch(`${t.httpUrl}/admin/users`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(account) });
  expect(created.status).toBe(201);
  await send(adtMessage({ controlId: 'ER-1', ...A }), adtMessage({ controlId: 'ER-KEPT', ...KEPT }));
  aId = await patientOf(A.mrn);
  keptId = await patientOf(KEPT.mrn);
});
afterAll(async () => {
  await t?.destroy();
});

describe('messages under a known patient\'s key', () => {
  it("seals a Consent's request body under its patient's key, in the write's transaction", async () => {
    const body = {
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: `Patient/${aId}` },
      dateTime: '2026-06-01T10:00:00+09:00',
      performer: [{ reference: `Patient/${aId}` }],
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: {
        type: 'permit',
        actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: 'Organization/snuh' } }],
      },
    };
    const response = await fetch(`${t.httpUrl}/fhir/Consent`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
    expect(response.status).toBe(201);
    consentId = ((await response.json()) as { id: string }).id;
    const stored = await row('control_id', `Consent/${consentId}/_history/1`);
    // The version's key, and the body's key under it: one erasure reaches both.
    const versionKey = (await t.pool.query('SELECT key_id FROM fhir_resource_history WHERE resource_type = $1 AND id = $2', ['Consent', consentId])).rows[0].key_id;
    expect(stored).toMatchObject({ raw_kek: null, raw_key_id: Number(versionKey) });
    expect(stored.raw_key_id).toBe(await liveKey(aId));
    expect((await inbox.getMessage(t.pool, stored.id))!.raw.toString('utf8')).toContain(`Patient/${aId}`);
  });

  it("moves the key of a message that fails mapping for a stored patient under that patient's key", async () => {
    // A first PID-3 repetition (the patient's key) whose assigning authority claims to be a UUID and is not: the
    // mapping fails; the second is the patient's own identifier.
    const broken = adtMessage({ controlId: 'ER-2', event: 'A08', ...A }).replace(`${A.mrn}^^^SNUH^MR`, `X7^^^&not-a-uuid&UUID^MR~${A.mrn}^^^SNUH^MR`);
    await send(broken);
    const failed = await finished('ER-2');
    expect(failed).toMatchObject({ state: 'failed', error_code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', raw_kek: null, raw_key_id: await liveKey(aId) });
    expect((await inbox.getMessage(t.pool, failed.id))!.raw.toString('latin1')).toContain('not-a-uuid');
  });

  it("moves the key of a message that mapped to nothing new (a resend under another control id) under its patient's key", async () => {
    await send(adtMessage({ controlId: 'ER-3', ...A }));
    const resent = await finished('ER-3');
    expect(resent).toMatchObject({ state: 'done', raw_kek: null, raw_key_id: await liveKey(aId) });
    // It wrote no version of the patient: only its Provenance and import AuditEvent (plain, ids only).
    const sealed = await t.pool.query('SELECT count(*)::int AS n FROM fhir_resource_history WHERE source_message_id = $1 AND key_id IS NOT NULL', [resent.id]);
    expect(sealed.rows[0].n).toBe(0);
  });
});

describe("an erasure's scan of the messages still under the master key", () => {
  let bId: string;
  const refused: Record<string, number> = {};

  it('leaves messages about a patient the store does not hold yet under the master key', async () => {
    // Refused at intake: a message type the engine does not take.
    const [unsupported] = await send(adtMessage({ controlId: 'ER-10', ...B }).replace('ADT^A01^ADT_A01', 'QBP^Q22^QBP_Q21'));
    expect(hl7Field(unsupported!, 'MSA', 1)).toBe('AR');
    const rejected = await row('control_id', 'ER-10');
    expect(rejected.state).toBe('rejected');
    refused.unsupported = rejected.id;
    // Failed mapping before the patient existed.
    await send(adtMessage({ controlId: 'ER-11', ...B }).replace(`${B.mrn}^^^SNUH^MR`, `X8^^^&not-a-uuid&UUID^MR~${B.mrn}^^^SNUH^MR`));
    refused.failed = (await finished('ER-11')).id;
    // Refused at intake and not HL7 at all: it names no one anyone could find.
    const garbage = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: `${B.family} ${B.mrn} is not a message` });
    expect(garbage.status).toBeGreaterThanOrEqual(400);
    refused.garbage = Number(garbage.headers.get('x-anchorline-message-id'));
    // A DICOM instance whose mapping the store refuses (every time: a rule on the patient's identifier), before anyone
    // holds the patient.
    const refusedIdentifier = (await blindIndexOf(t.pool)).codeHash('identifier', 'SEOUL0009');
    await t.pool.query(`ALTER TABLE fhir_search_token ADD CONSTRAINT no_seoul0009 CHECK (NOT (param = 'identifier' AND code_hash = ${refusedIdentifier}))`);
    try {
      const accepted = await t.engine.dicomIntake!.accept(dicomBytes, { protocol: 'dimse', source: '127.0.0.1:40000', callingAeTitle: 'MODALITY9' });
      expect(accepted.status).toBe('stored');
      refused.dicom = (accepted as { messageId: number }).messageId;
      await eventually(async () => (await row('id', refused.dicom)).state === 'failed', 20_000, 'the DICOM instance failed');
    } finally {
      await t.pool.query('ALTER TABLE fhir_search_token DROP CONSTRAINT no_seoul0009');
    }
    expect(await row('id', refused.dicom)).toMatchObject({ error_code: 'ANCHORLINE_ERR_STORE_REFUSED_VALUE' });
    for (const [name, id] of Object.entries(refused)) expect(await row('id', id), name).toMatchObject({ raw_kek: expect.any(String), raw_key_id: null });

    // Now the patient arrives, with both identifiers (the hospital's and the one the PACS names them by).
    await send(adtMessage({ controlId: 'ER-12', ...B }).replace(`${B.mrn}^^^SNUH^MR`, `${B.mrn}^^^SNUH^MR~SEOUL0009^^^SEOULGEN^MR`));
    bId = await patientOf(B.mrn);
    expect(await row('control_id', 'ER-12')).toMatchObject({ raw_key_id: await liveKey(bId) });
    // What was refused before stays where it was: nothing maps it again.
    for (const [name, id] of Object.entries(refused)) expect(await row('id', id), name).toMatchObject({ raw_key_id: null });
  });

  it('erases with the patient every refused or failed message that names them, and the DICOM file of one', async () => {
    const sealedBlob = (await t.pool.query('SELECT blob_sealed_sha256 FROM inbox_message WHERE id = $1', [refused.dicom])).rows[0].blob_sealed_sha256 as Buffer;
    const file = path.join(t.config.dataDir, 'blobs', sealedBlob.toString('hex').slice(0, 2), sealedBlob.toString('hex').slice(2, 4), sealedBlob.toString('hex'));
    expect(existsSync(file)).toBe(true);
    const keptBefore = await proof('Patient', keptId);
    const erasedKey = await liveKey(bId);

    const report = await erase(bId);
    expect(report).toMatchObject({ patient: `Patient/${bId}`, keys: 1, attributedMessages: 3, blobs: 1 });
    // ER-12 (mapped), and the three the scan found; the garbage was read and named no one.
    expect(report.messages).toBe(4);
    expect(report.scannedMessages).toBeGreaterThanOrEqual(4);
    expect(report.unattributableMessages).toBeGreaterThanOrEqual(1);
    const event = (await get(`/fhir/${report.auditEvent}`)).body;
    expect(event.outcomeDesc).toContain('3 of the raw messages found by their content');
    expect(event.outcomeDesc).not.toContain(B.mrn);

    for (const name of ['unsupported', 'failed', 'dicom']) {
      const erased = await row('id', refused[name]);
      expect(erased, name).toMatchObject({ raw_kek: null, raw_key_id: erasedKey, error_detail: null });
      await expect(inbox.getMessage(t.pool, erased.id), name).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_ERASED' });
      const view = await get(`/admin/messages/${erased.id}`);
      expect([view.status, view.code], name).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    }
    // The instance's sealed file is gone, and its digest reads as erased.
    expect(existsSync(file)).toBe(false);
    const blob = await fetch(`${t.httpUrl}/blobs/${sha256(dicomBytes)}`, { headers: authHeaders() });
    expect([blob.status, blob.headers.get('x-anchorline-error')]).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    // The garbage names no one: it stays under the master key, readable by an administrator.
    expect(await row('id', refused.garbage)).toMatchObject({ raw_key_id: null, raw_kek: expect.any(String) });
    expect((await get(`/admin/messages/${refused.garbage}`)).status).toBe(200);
    // Another patient's messages are not touched, and their proofs verify.
    expect(await row('control_id', 'ER-KEPT')).toMatchObject({ raw_key_id: await liveKey(keptId) });
    expect(verifyLogBundle(keptBefore).ok).toBe(true);
    expect(verifyLogBundle(await proof('Patient', keptId)).ok).toBe(true);
  });
});

describe('key rotation and erasure of the messages moved under a patient key', () => {
  const aMessages = (): Promise<Array<{ id: number; raw_key_id: number }>> =>
    t.pool
      .query(`SELECT id, raw_key_id FROM inbox_message WHERE control_id IN ('ER-1', 'ER-2', 'ER-3', $1) ORDER BY id`, [`Consent/${consentId}/_history/1`])
      .then((result) => result.rows.map((each) => ({ id: Number(each.id), raw_key_id: Number(each.raw_key_id) })));

  it("keeps them readable through a rotation of the patient's key and of the master key", async () => {
    const before = await aMessages();
    expect(before).toHaveLength(4);
    const report = await rotatePatientKey(t.pool, `Patient/${aId}`, { readerGraceMs: 0 });
    expect(report.messages).toBe(4);
    expect(report.destroyedKeys).toBe(1);
    expect((await aMessages()).map((each) => each.raw_key_id)).toEqual([report.keyId, report.keyId, report.keyId, report.keyId]);

    const kms = keyring.kms as FileKms;
    await kms.rotate();
    expect(await rewrapMasterKeys(t.pool, keyring)).toMatchObject({ remaining: 0 });
    keyring.forget([...Array(1000).keys()]);
    for (const { id } of before) expect((await inbox.getMessage(t.pool, id))!.raw.length).toBeGreaterThan(0);
    const body = await row('control_id', `Consent/${consentId}/_history/1`);
    expect((await inbox.getMessage(t.pool, body.id))!.raw.toString('utf8')).toContain(`Patient/${aId}`);
  });

  it("makes a Consent's body unreadable with the patient, while every other proof verifies and the audit stays clean", async () => {
    const keptBefore = await proof('Patient', keptId);
    const consentBefore = await proof('Consent', consentId);
    const messages = await aMessages();
    const hashes = new Map<number, string>();
    for (const { id } of messages) hashes.set(id, sha256((await inbox.getMessage(t.pool, id))!.raw));
    const rowCount = async (controlId: string): Promise<number> => Number((await t.pool.query('SELECT count(*) FROM inbox_message WHERE control_id = $1', [controlId])).rows[0].count);
    const er1Rows = await rowCount('ER-1');
    const report = await erase(aId);
    expect(report.messages).toBe(4);
    for (const { id } of messages) await expect(inbox.getMessage(t.pool, id)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_ERASED' });
    // No plain SHA-256 of an erased message is left to confirm a guess of it: each is a keyed digest of the hash.
    const index = await blindIndexOf(t.pool);
    for (const { id } of messages) {
      const { raw_sha256: stored, digests_keyed: keyed } = (await t.pool.query('SELECT raw_sha256, digests_keyed FROM inbox_message WHERE id = $1', [id])).rows[0];
      expect(keyed).toBe(true);
      expect(stored.toString('hex')).not.toBe(hashes.get(id));
      expect(stored.equals(index.erasedDigest(Buffer.from(hashes.get(id)!, 'hex')))).toBe(true);
    }
    // A resend of an erased message is still recognised: the same bytes are a duplicate (nothing stored or mapped
    // again), other bytes a conflict (kept for review, not mapped).
    const [resent, changed] = await send(adtMessage({ controlId: 'ER-1', ...A }), adtMessage({ controlId: 'ER-1', ...A, family: 'Changed' }));
    expect(hl7Field(resent!, 'MSA', 1)).toBe('AA');
    expect(hl7Field(changed!, 'MSA', 1)).toBe('AR');
    expect(await rowCount('ER-1')).toBe(er1Rows + 1);
    expect((await t.pool.query(`SELECT disposition FROM inbox_message WHERE control_id = 'ER-1' ORDER BY id DESC LIMIT 1`)).rows[0].disposition).toBe('conflict');
    const source = await get(`/proofs/Consent/${consentId}/_history/1/source`);
    expect([source.status, source.code]).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    expect((await get(`/proofs/Consent/${consentId}/_history/1`)).status).toBe(410);
    expect(verifyLogBundle(consentBefore).ok).toBe(true);
    expect(verifyLogBundle(keptBefore).ok).toBe(true);
    expect(verifyLogBundle(await proof('Patient', keptId)).ok).toBe(true);

    const { exit, report: audited } = await audit();
    expect(audited.findings).toEqual([]);
    expect(exit).toBe(0);
    // B's four messages and A's four; B's instance file.
    expect(audited.erased).toMatchObject({ messages: 8, blobs: 1 });
  });
});
