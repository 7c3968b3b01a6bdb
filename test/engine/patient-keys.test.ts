/**
 * A patient's key beyond sealing, through the real engine with encryption on: a sealed export (Patient/$export-sealed)
 * opens with the recipient's private key and holds the patient's record, is refused to a person without consent, and
 * leaves an anchored AuditEvent naming the recipient key's thumbprint; a patient key rotation re-seals every record
 * and raw-message key under the next key version while messages keep arriving, destroys the old key, and leaves reads,
 * new records, the ledger audit and proofs as they were; an interrupted rotation is finished by running it again.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSealedExport } from '../../api/index.ts';
import { verifyLogBundle } from '../../anchor/index.ts';
import { runAudit } from '../../cli/audit.ts';
import { runKeys } from '../../cli/keys.ts';
import { attachKeyring, inbox, openKeyring, resources, rotatePatientKey, type Keyring } from '../../store/index.ts';
import { captured } from '../support/audit-output.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { startTestIdp, type TestIdp } from '../support/idp.ts';

let t: TestEngine;
let keyring: Keyring;
let idp: TestIdp;
let configFile: string;
const SHARED = { mrn: 'PK1', family: 'Ondravelt', given: 'Quessamir' };
const ROTATED = { mrn: 'PK2', family: 'Thimbrowe', given: 'Astrelune' };
let sharedId: string;
let rotatedId: string;

async function get(url: string): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json().catch(() => undefined), code: response.headers.get('x-anchorline-error') };
}

async function send(...messages: string[]): Promise<void> {
  const client = await MllpTestClient.connect(t.mllpPort);
  for (const message of messages) await client.request(message);
  await client.close();
}

async function patientOf(mrn: string): Promise<any> {
  return eventually(async () => (await get(`/fhir/Patient?identifier=${mrn}`)).body?.entry?.[0]?.resource);
}

function token(subject: string, scope: string): Promise<string> {
  return idp.token(subject, scope);
}

async function exportSealed(id: string, key: unknown, authorization = authHeaders()): Promise<{ status: number; text: string; code: string | null; auditEvent: string | null; type: string | null }> {
  const response = await fetch(`${t.httpUrl}/fhir/Patient/${id}/$export-sealed`, { method: 'POST', headers: { ...authorization, 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  return { status: response.status, text: await response.text(), code: response.headers.get('x-anchorline-error'), auditEvent: response.headers.get('x-anchorline-audit-event'), type: response.headers.get('content-type') };
}

/** The key rows of a patient, oldest first. */
async function keysOf(patientId: string): Promise<Array<{ id: number; key_version: number; destroyed: boolean }>> {
  const rows = await t.pool.query('SELECT id, key_version, destroyed_at IS NOT NULL AS destroyed FROM patient_key WHERE patient = $1 ORDER BY key_version', [`Patient/${patientId}`]);
  return rows.rows.map((row) => ({ id: Number(row.id), key_version: row.key_version, destroyed: row.destroyed }));
}

/** The key ids the patient's sealed versions and raw messages name. */
async function keyIdsInUse(patientId: string): Promise<number[]> {
  const ids = (await keysOf(patientId)).map((k) => k.id);
  const rows = await t.pool.query<{ key_id: string }>(
    'SELECT DISTINCT key_id FROM (SELECT key_id FROM fhir_resource_history WHERE key_id = ANY($1::bigint[]) UNION ALL SELECT raw_key_id FROM inbox_message WHERE raw_key_id = ANY($1::bigint[])) x ORDER BY 1',
    [ids],
  );
  return rows.rows.map((row) => Number(row.key_id));
}

async function proof(type: string, id: string, vid = 1): Promise<any> {
  return eventually(async () => {
    const { status, body } = await get(`/proofs/${type}/${id}/_history/${vid}`);
    return status === 200 ? body : undefined;
  }, 20_000, `proof of ${type}/${id}`);
}

beforeAll(async () => {
  idp = await startTestIdp('https://idp.keys.test');
  t = await startTestEngine({
    overrides: { anchor: { closeAfterMs: 200 }, encryption: { enabled: true }, auth: { externalIdp: idp.externalIdp }, consent: { default: 'opt-in' } },
  });
  keyring = (await openKeyring(t.config))!;
  attachKeyring(t.pool, keyring);
  configFile = path.join(t.config.dataDir, 'patient-keys-config.json');
  await writeFile(configFile, JSON.stringify(t.config));

  await send(adtMessage({ controlId: 'PK-1', ...SHARED }), adtMessage({ controlId: 'PK-2', ...ROTATED }));
  sharedId = (await patientOf(SHARED.mrn)).id;
  rotatedId = (await patientOf(ROTATED.mrn)).id;
  const accounts = [
    { username: 'pk-patient', role: 'patient', fhirUser: `Patient/${sharedId}`, displayName: 'The patient', patients: [`Patient/${sharedId}`], externalSubject: 'sub-pk-patient' },
    { username: 'pk-doctor', role: 'practitioner', fhirUser: 'Practitioner/pk-doctor', displayName: 'A doctor', externalSubject: 'sub-pk-doctor' },
  ];
  for (const account of accounts) {
    const response = await fetch(`${t.httpUrl}/admin/users`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(account) });
    expect(response.status).toBe(201);
  }
}, 120_000);

afterAll(async () => {
  await t?.destroy();
  await idp?.close();
});

describe('sealed export', () => {
  it('seals the patient\'s record for an EC recipient key; the private key opens it, and the share is an anchored AuditEvent', async () => {
    const recipient = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const publicJwk = await exportJWK(recipient.publicKey);
    const answer = await exportSealed(sharedId, publicJwk);
    expect(answer.status).toBe(200);
    expect(answer.type).toContain('application/jose');
    // Compact serialization: five parts, and the family name does not show through.
    expect(answer.text.split('.')).toHaveLength(5);
    expect(answer.text).not.toContain(SHARED.family);
    const bundle: any = await openSealedExport(answer.text, await exportJWK(recipient.privateKey));
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const entries = bundle.entry.map((e: any) => e.resource);
    expect(entries.find((r: any) => r.resourceType === 'Patient')).toMatchObject({ id: sharedId, name: [{ family: SHARED.family }] });
    expect(entries.some((r: any) => r.resourceType === 'Encounter')).toBe(true);
    expect(entries.some((r: any) => r.resourceType === 'AuditEvent')).toBe(false);
    // Another key does not open it.
    const other = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    await expect(openSealedExport(answer.text, await exportJWK(other.privateKey))).rejects.toThrow();

    const thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256');
    const event = (await get(`/fhir/${answer.auditEvent}`)).body;
    expect(event.type.code).toBe('110106');
    expect(event.subtype.map((s: any) => s.code)).toEqual(['operation', 'export-sealed']);
    expect(event.agent.find((a: any) => a.altId === `jwk-thumbprint/${thumbprint}`).who.identifier.value).toBe(`urn:ietf:params:oauth:jwk-thumbprint:sha-256:${thumbprint}`);
    expect(event.entity.filter((e: any) => e.role?.code === '1').map((e: any) => e.what.reference)).toEqual([`Patient/${sharedId}`]);
    const versions = event.entity.filter((e: any) => e.role?.code === '4').map((e: any) => e.what.reference).sort();
    expect(versions).toEqual(entries.map((r: any) => `${r.resourceType}/${r.id}/_history/${r.meta.versionId}`).sort());
    expect(event.outcomeDesc).not.toContain(SHARED.family);
    // Found by the recipient's key, and anchored like every record.
    const byKey = (await get(`/fhir/AuditEvent?altid=jwk-thumbprint/${thumbprint}`)).body;
    expect(byKey.entry.map((e: any) => e.resource.id)).toEqual([answer.auditEvent!.split('/')[1]]);
    expect(verifyLogBundle(await proof('AuditEvent', answer.auditEvent!.split('/')[1]!)).ok).toBe(true);
  });

  it('seals for an RSA-OAEP-256 and an X25519 key too, and refuses private and unsupported keys', async () => {
    for (const alg of ['RSA-OAEP-256', 'ECDH-ES+A256KW/X25519'] as const) {
      const pair = alg === 'RSA-OAEP-256' ? await generateKeyPair('RSA-OAEP-256', { extractable: true }) : await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
      const answer = await exportSealed(sharedId, await exportJWK(pair.publicKey));
      expect(answer.status, alg).toBe(200);
      const bundle: any = await openSealedExport(answer.text, await exportJWK(pair.privateKey));
      expect(bundle.entry.some((e: any) => e.resource.id === sharedId)).toBe(true);
    }
    const ec = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const privateKey = await exportJWK(ec.privateKey);
    const refused = await exportSealed(sharedId, privateKey);
    expect([refused.status, refused.code]).toEqual([400, 'ANCHORLINE_ERR_INVALID_REQUEST']);
    expect(refused.text).not.toContain(privateKey.d);
    expect((await exportSealed(sharedId, { kty: 'oct', k: 'AAAA' })).status).toBe(400);
    expect((await exportSealed(sharedId, { kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA' })).status).toBe(400);
  });

  it('is refused to a person without consent, as a read is, and served to the patient', async () => {
    const recipient = await generateKeyPair('ECDH-ES+A256KW', { extractable: true });
    const key = await exportJWK(recipient.publicKey);
    const doctor = await exportSealed(sharedId, key, { authorization: `Bearer ${await token('sub-pk-doctor', 'user/*.rs')}` });
    expect([doctor.status, doctor.code]).toEqual([404, 'ANCHORLINE_ERR_NOT_FOUND']);
    const own = await exportSealed(sharedId, key, { authorization: `Bearer ${await token('sub-pk-patient', 'patient/*.rs')}` });
    expect(own.status).toBe(200);
    const bundle: any = await openSealedExport(own.text, await exportJWK(recipient.privateKey));
    expect(bundle.entry.some((e: any) => e.resource.resourceType === 'Patient' && e.resource.id === sharedId)).toBe(true);
    const event = (await get(`/fhir/${own.auditEvent}`)).body;
    expect(event.purposeOfEvent[0].coding[0].code).toBe('PATRQT');
  });
});

describe('patient key rotation', () => {
  it('re-seals every record under the next key while messages arrive, destroys the old key, and reads, proofs and the audit stay as they were', async () => {
    const before = await keysOf(rotatedId);
    expect(before).toHaveLength(1);
    expect(await keyIdsInUse(rotatedId)).toEqual([before[0]!.id]);
    const proofBefore = await proof('Patient', rotatedId);

    // Messages of the same patient arrive while the rotation runs.
    const arriving = send(...[3, 4, 5, 6].map((n) => adtMessage({ event: 'A08', controlId: `PK-R${n}`, ...ROTATED, given: `Astrelune${n}` })));
    const response = await fetch(`${t.httpUrl}/admin/patients/${rotatedId}/$rotate-key`, { method: 'POST', headers: authHeaders() });
    expect(response.status).toBe(200);
    const report = (await response.json()) as any;
    await arriving;
    await eventually(async () => (await get(`/fhir/Patient/${rotatedId}`)).body.name[0].given[0] === 'Astrelune6');
    expect(report).toMatchObject({ patient: `Patient/${rotatedId}`, keyVersion: 2, replacedKeys: [before[0]!.id], resumed: false });
    expect(report.versions).toBeGreaterThanOrEqual(2);

    // What a worker sealed under the old key while it was being replaced is taken by a later run, at the latest.
    if (report.destroyedKeys === 0) await rotatePatientKey(t.pool, `Patient/${rotatedId}`);
    const after = await keysOf(rotatedId);
    expect(after.map((k) => [k.key_version, k.destroyed])).toEqual([[1, true], [2, false]]);
    expect(await keyIdsInUse(rotatedId)).toEqual([after[1]!.id]);
    expect((await t.pool.query('SELECT wrapped_dek FROM patient_key WHERE id = $1', [before[0]!.id])).rows[0].wrapped_dek).toBeNull();

    // Reads of every version, and of the raw message, open under the new key.
    const history = (await get(`/fhir/Patient/${rotatedId}/_history`)).body;
    expect(history.entry.length).toBeGreaterThanOrEqual(5);
    expect((await get(`/fhir/Patient/${rotatedId}/_history/1`)).body.name[0]).toMatchObject({ family: ROTATED.family, given: [ROTATED.given] });
    const message = (await t.pool.query("SELECT id, raw_key_id FROM inbox_message WHERE control_id = 'PK-2'")).rows[0];
    expect(Number(message.raw_key_id)).toBe(after[1]!.id);
    expect((await inbox.getMessage(t.pool, message.id))!.raw.toString('latin1')).toContain(ROTATED.family);

    // A message after the rotation is sealed under the new key.
    await send(adtMessage({ event: 'A08', controlId: 'PK-R7', ...ROTATED, given: 'Astrelune7' }));
    await eventually(async () => (await get(`/fhir/Patient/${rotatedId}`)).body.name[0].given[0] === 'Astrelune7');
    const current = await resources.readCurrent(t.pool, 'Patient', rotatedId);
    const row = (await t.pool.query('SELECT key_id FROM fhir_resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3', ['Patient', rotatedId, current!.versionId])).rows[0];
    expect(Number(row.key_id)).toBe(after[1]!.id);

    // Leaves did not change: the proof from before still verifies, and so does one fetched now.
    expect(verifyLogBundle(proofBefore).ok).toBe(true);
    expect(verifyLogBundle(await proof('Patient', rotatedId)).ok).toBe(true);
    const output = captured();
    const exit = await runAudit(['--config', configFile, '--json'], output, {});
    const audit = JSON.parse(output.stdout());
    expect(audit.findings).toEqual([]);
    expect(exit).toBe(0);
    expect(audit.erased.versions).toBe(0);
  });

  it('finishes an interrupted rotation when run again (anchorline keys rotate-patient)', async () => {
    // A crash right after the next key was committed: two live keys, everything still under the older one.
    const [older] = (await keysOf(rotatedId)).filter((k) => !k.destroyed);
    const { wrapped, keyId } = await keyring.kms.wrap(Buffer.alloc(32, 7));
    await t.pool.query('INSERT INTO patient_key (patient, key_version, wrapped_dek, kek_id) VALUES ($1, $2, $3, $4)', [`Patient/${rotatedId}`, older!.key_version + 1, wrapped, keyId]);
    const stdout = process.stdout.write;
    let printed = '';
    process.stdout.write = ((chunk: string) => ((printed += chunk), true)) as typeof process.stdout.write;
    let exit: number;
    try {
      exit = await runKeys(['rotate-patient', '--patient', `Patient/${rotatedId}`, '--config', configFile]);
    } finally {
      process.stdout.write = stdout;
    }
    expect(exit).toBe(0);
    const report = JSON.parse(printed);
    expect(report).toMatchObject({ resumed: true, keyVersion: older!.key_version + 1, replacedKeys: [older!.id], destroyedKeys: 1 });
    const keys = await keysOf(rotatedId);
    expect(keys.filter((k) => !k.destroyed).map((k) => k.key_version)).toEqual([older!.key_version + 1]);
    expect(await keyIdsInUse(rotatedId)).toEqual([keys.at(-1)!.id]);
    keyring.forget([...Array(1000).keys()]);
    expect((await get(`/fhir/Patient/${rotatedId}/_history/1`)).body.name[0].family).toBe(ROTATED.family);
  });

  it('refuses a patient without a live key', async () => {
    const response = await fetch(`${t.httpUrl}/admin/patients/no-such-patient/$rotate-key`, { method: 'POST', headers: authHeaders() });
    expect([response.status, response.headers.get('x-anchorline-error')]).toEqual([404, 'ANCHORLINE_ERR_NOT_FOUND']);
  });
});
