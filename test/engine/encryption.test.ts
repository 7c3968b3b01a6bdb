/**
 * Encryption at rest through the real engine: an ADT mapped with encryption.enabled is stored sealed (neither the
 * resource history nor the inbox holds the patient's name in plaintext) and reads back over FHIR as sent; a sealed
 * version moved onto another row does not open; erasing the patient makes their records and raw message unreadable
 * and their proofs answer ANCHORLINE_ERR_ERASED, while another patient's proof, and a bundle fetched before the
 * erasure, still verify, and `anchorline audit` stays clean and reports the erasure; the master key rotates with
 * every data key re-wrapped, the old key is retired, and records still read.
 */
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLogBundle } from '../../anchor/index.ts';
import { runAudit } from '../../cli/audit.ts';
import { attachKeyring, FileKms, inbox, keysByMasterKey, masterKeyFilePath, openKeyring, resources, retireMasterKey, rewrapMasterKeys, type Keyring } from '../../store/index.ts';
import { captured } from '../support/audit-output.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;
let keyring: Keyring;
// Names no other fixture uses, to look for in the stored bytes.
const ERASED = { mrn: 'ENC1', family: 'Qorvalind', given: 'Zyxwane' };
const KEPT = { mrn: 'ENC2', family: 'Marbleton', given: 'Yusrakel' };

beforeAll(async () => {
  t = await startTestEngine({ overrides: { anchor: { closeAfterMs: 200 }, encryption: { enabled: true } } });
  // The test's own pool reads as a tool would: with the engine's keyring over the same key file.
  keyring = (await openKeyring(t.config))!;
  attachKeyring(t.pool, keyring);
});
afterAll(async () => {
  await t?.destroy();
});

async function get(url: string): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json().catch(() => undefined), code: response.headers.get('x-anchorline-error') };
}

async function patientOf(mrn: string): Promise<any> {
  return eventually(async () => (await get(`/fhir/Patient?identifier=${mrn}`)).body?.entry?.[0]?.resource);
}

async function proof(id: string, vid = 1): Promise<any> {
  return eventually(async () => {
    const { status, body } = await get(`/proofs/Patient/${id}/_history/${vid}`);
    return status === 200 ? body : undefined;
  }, 20_000, `proof of Patient/${id}`);
}

/** Rows of the table whose column holds `text` in its bytes (sealed or raw bytea, or jsonb content as text). */
async function rowsHolding(text: string): Promise<{ history: number; inbox: number }> {
  const history = await t.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM fhir_resource_history WHERE content::text LIKE '%' || $1 || '%' OR position(convert_to($1, 'UTF8') IN coalesce(sealed, '')) > 0`,
    [text],
  );
  const inboxRows = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE position(convert_to($1, 'UTF8') IN raw) > 0`, [text]);
  return { history: history.rows[0]!.n, inbox: inboxRows.rows[0]!.n };
}

describe('encryption at rest', () => {
  let erasedId: string;
  let keptId: string;
  let bundleBefore: any;

  it('stores an ADT sealed and reads it back over FHIR as sent', async () => {
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ controlId: 'ENC-1', ...ERASED }));
    await client.request(adtMessage({ controlId: 'ENC-2', ...KEPT }));
    await client.close();
    const patient = await patientOf(ERASED.mrn);
    erasedId = patient.id;
    keptId = (await patientOf(KEPT.mrn)).id;
    expect(patient.name[0]).toMatchObject({ family: ERASED.family, given: [ERASED.given] });
    expect((await get(`/fhir/Patient/${erasedId}/_history/1`)).body.name[0].family).toBe(ERASED.family);
    expect((await resources.readCurrent(t.pool, 'Patient', erasedId))!.content.name).toEqual(patient.name);

    const row = (await t.pool.query('SELECT content, sealed, key_id FROM fhir_resource_history WHERE resource_type = $1 AND id = $2', ['Patient', erasedId])).rows[0];
    expect(row.content).toBeNull();
    expect(row.sealed).toBeInstanceOf(Buffer);
    expect(await rowsHolding(ERASED.family)).toEqual({ history: 0, inbox: 0 });
    expect(await rowsHolding(ERASED.given)).toEqual({ history: 0, inbox: 0 });
    // Every resource of the patient's compartment is sealed under one key; the raw message's key moved under it.
    const sealedTypes = await t.pool.query<{ resource_type: string }>('SELECT DISTINCT resource_type FROM fhir_resource_history WHERE key_id = $1 ORDER BY 1', [row.key_id]);
    expect(sealedTypes.rows.map((r) => r.resource_type)).toEqual(expect.arrayContaining(['Encounter', 'Patient']));
    const message = (await t.pool.query("SELECT id, raw_kek, raw_key_id FROM inbox_message WHERE control_id = 'ENC-1'")).rows[0];
    expect(message).toMatchObject({ raw_kek: null, raw_key_id: row.key_id });
    expect((await inbox.getMessage(t.pool, message.id))!.raw.toString('latin1')).toContain(ERASED.family);
    expect((await stat(masterKeyFilePath(t.config))).mode & 0o777).toBe(0o600);
  });

  it('refuses a sealed version moved onto another row', async () => {
    const encounter = (await t.pool.query<{ id: string; sealed: Buffer }>(
      "SELECT h.id, h.sealed FROM fhir_resource_history h JOIN fhir_resource_history p ON p.key_id = h.key_id WHERE h.resource_type = 'Encounter' AND p.resource_type = 'Patient' AND p.id = $1",
      [erasedId],
    )).rows[0]!;
    // Same patient, same key: only the associated data (table, type, id, version) tells the rows apart.
    await t.pool.query("UPDATE fhir_resource_history SET sealed = (SELECT sealed FROM fhir_resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1) WHERE resource_type = 'Encounter' AND id = $2", [erasedId, encounter.id]);
    try {
      const moved = await get(`/fhir/Encounter/${encounter.id}`);
      expect(moved.status).toBe(500);
      expect(moved.code).toBe('ANCHORLINE_ERR_KEY_UNAVAILABLE');
    } finally {
      await t.pool.query("UPDATE fhir_resource_history SET sealed = $1 WHERE resource_type = 'Encounter' AND id = $2", [encounter.sealed, encounter.id]);
    }
    expect((await get(`/fhir/Encounter/${encounter.id}`)).status).toBe(200);
  });

  it('erases a patient by destroying their key, and every other proof still verifies', async () => {
    bundleBefore = await proof(erasedId);
    const keptBefore = await proof(keptId);
    const response = await fetch(`${t.httpUrl}/admin/patients/${erasedId}/$erase`, {
      method: 'POST',
      headers: { ...authHeaders(), 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'request 2026-17' }),
    });
    expect(response.status).toBe(200);
    const report = (await response.json()) as any;
    expect(report).toMatchObject({ patient: `Patient/${erasedId}`, keys: 1, messages: 1 });
    expect(report.versions).toBeGreaterThanOrEqual(2);

    const read = await get(`/fhir/Patient/${erasedId}`);
    expect(read.status).toBe(410);
    expect((await get(`/fhir/Patient?identifier=${ERASED.mrn}`)).body.entry ?? []).toEqual([]);
    const vread = await get(`/fhir/Patient/${erasedId}/_history/1`);
    expect([vread.status, vread.code]).toEqual([410, 'ANCHORLINE_ERR_ERASED']);
    const messageId = (await t.pool.query("SELECT id FROM inbox_message WHERE control_id = 'ENC-1'")).rows[0].id;
    await expect(inbox.getMessage(t.pool, messageId)).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_ERASED' });
    expect((await get(`/proofs/Patient/${erasedId}/_history/1/source`)).status).toBe(410);
    // What would still link is gone: the index rows, the leaf preimages.
    expect((await t.pool.query('SELECT count(*)::int AS n FROM fhir_search_token WHERE resource_type = $1 AND id = $2', ['Patient', erasedId])).rows[0].n).toBe(0);
    expect((await t.pool.query('SELECT preimage, erased_at FROM ledger_leaf WHERE resource_type = $1 AND resource_id = $2', ['Patient', erasedId])).rows[0]).toMatchObject({ preimage: null, erased_at: expect.any(Date) });
    // The erasure is an anchored record of its own.
    const audit = (await get(`/fhir/${report.auditEvent}`)).body;
    expect(audit.subtype[0].code).toBe('erasure');
    expect(audit.entity[0].what.reference).toBe(`Patient/${erasedId}`);

    const erasedProof = await get(`/proofs/Patient/${erasedId}/_history/1`);
    expect(erasedProof.status).toBe(410);
    expect(erasedProof.code).toBe('ANCHORLINE_ERR_ERASED');
    // The other patient's proof, old and new, and the erased record's own bundle from before: leaves and tree untouched.
    expect(verifyLogBundle(keptBefore).ok).toBe(true);
    expect(verifyLogBundle(await proof(keptId)).ok).toBe(true);
    expect(verifyLogBundle(bundleBefore).ok).toBe(true);
  });

  it('keeps the ledger audit clean and reports the erasure', async () => {
    const configFile = path.join(t.config.dataDir, 'audit-config.json');
    await writeFile(configFile, JSON.stringify(t.config));
    const output = captured();
    const exit = await runAudit(['--config', configFile, '--json'], output, {});
    const report = JSON.parse(output.stdout());
    expect(report.findings).toEqual([]);
    expect(exit).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.erased.versions).toBeGreaterThanOrEqual(2);
    expect(report.erased.messages).toBe(1);
    const text = captured();
    expect(await runAudit(['--config', configFile], text, {})).toBe(0);
    expect(text.stdout()).toMatch(/ERASED \d+ resource versions, 1 raw messages/);
  });

  it('rotates the master key: every data key re-wrapped, the old key retired, records still read', async () => {
    const kms = keyring.kms as FileKms;
    const old = kms.currentKeyId;
    const fresh = await kms.rotate();
    expect(fresh).not.toBe(old);
    const report = await rewrapMasterKeys(t.pool, keyring);
    expect(report).toMatchObject({ keyId: fresh, remaining: 0 });
    expect(report.patientKeys).toBeGreaterThanOrEqual(1);
    expect([...(await keysByMasterKey(t.pool)).keys()]).toEqual([fresh]);
    await retireMasterKey(t.pool, kms, old);
    expect(kms.keyIds).toEqual([fresh]);
    keyring.forget([...Array(100).keys()]);
    // The engine never saw the new key; it reads the file again when a wrapped key names one it does not know.
    expect((await get(`/fhir/Patient/${keptId}`)).body.name[0].family).toBe(KEPT.family);
    const client = await MllpTestClient.connect(t.mllpPort);
    await client.request(adtMessage({ event: 'A08', controlId: 'ENC-3', ...KEPT, given: 'Yusra' }));
    await client.close();
    await eventually(async () => (await get(`/fhir/Patient/${keptId}`)).body.name[0].given[0] === 'Yusra');
  });
});
