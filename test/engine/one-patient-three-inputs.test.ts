/**
 * One patient through all three inputs: an ADT over MLLP, a C-CDA posted over HTTP and a CT study sent by DCMTK's
 * storescu over DIMSE. With the hospital's assigning authority mapped to its OID (the engine's `mapping` settings),
 * all three name the same Patient resource, and everything each produced is valid FHIR found under that patient.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateFhirResource } from '../../mappers/index.ts';
import { segment } from '../support/messages.ts';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const OID = '1.2.410.999999.1.1';
const MRN = 'SEOUL0001';

let t: TestEngine;

beforeAll(async () => {
  // SEOULGEN is the namespace the HIS (PID-3 CX-4) and the PACS (Issuer of Patient ID) use for the hospital's MRN.
  t = await startTestEngine({ overrides: { mapping: { identifierSystems: { SEOULGEN: `urn:oid:${OID}` } } } });
});
afterAll(async () => {
  await t?.destroy();
});

async function get(url: string): Promise<any> {
  return (await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() })).json();
}

async function settled(): Promise<void> {
  await eventually(async () => {
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
    return rows[0]!.n === 0 ? true : undefined;
  }, 30_000, 'every message mapped');
}

function storescu(files: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile('storescu', ['-aec', 'ANCHORLINE', '127.0.0.1', String(t.dicomPort), ...files], { timeout: 30_000, env: { ...process.env, TCP_NODELAY: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('one patient, three inputs', () => {
  it('links the HL7 feed, a C-CDA document and a DICOM study to the same Patient', async () => {
    const adt = [
      segment('MSH', { 2: '^~\\&', 3: 'HIS', 4: 'SEOULGEN', 5: 'ANCHORLINE', 6: 'HUB', 7: '20240305090000', 9: 'ADT^A04^ADT_A01', 10: 'TRI-1', 11: 'P', 12: '2.5.1' }),
      segment('EVN', { 1: 'A04', 2: '20240305090000' }),
      segment('PID', { 1: '1', 3: `${MRN}^^^SEOULGEN^MR`, 5: 'Hong^Gildong', 7: '19800101', 8: 'M' }),
    ].join('\r') + '\r';
    const client = await MllpTestClient.connect(t.mllpPort);
    expect(hl7Field(await client.request(adt), 'MSA', 1)).toBe('AA');
    await client.close();
    await settled();
    const patients = (await get(`/fhir/Patient?identifier=${encodeURIComponent(`urn:oid:${OID}|${MRN}`)}`)).entry;
    expect(patients).toHaveLength(1);
    const patient = patients[0].resource;

    // The CDA names the same patient by the OID and MRN.
    const cda = readFileSync(path.join(FIXTURES, 'cda', 'korean-discharge-summary.xml'), 'utf8').replace('extension="H0012345"', `extension="${MRN}"`);
    const posted = await fetch(`${t.httpUrl}/ingest/cda`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/xml' }, body: cda });
    expect(posted.status).toBe(202);

    // The PACS sends two CT instances of a study for the same patient.
    const sent = await storescu([path.join(FIXTURES, 'dicom', 'ct-1.dcm'), path.join(FIXTURES, 'dicom', 'ct-2.dcm')]);
    expect(sent.code, sent.output).toBe(0);
    await settled();

    const failed = await t.pool.query(`SELECT protocol, control_id, error_code FROM inbox_message WHERE state = 'failed' OR disposition <> 'accepted'`);
    expect(failed.rows).toEqual([]);
    expect((await get(`/fhir/Patient?identifier=${encodeURIComponent(`urn:oid:${OID}|${MRN}`)}`)).entry).toHaveLength(1);
    const ref = `Patient/${patient.id}`;
    const studies = (await get(`/fhir/ImagingStudy?patient=${ref}`)).entry ?? [];
    expect(studies).toHaveLength(1);
    expect(studies[0].resource.numberOfInstances).toBe(2);
    const documents = (await get(`/fhir/DocumentReference?patient=${ref}`)).entry ?? [];
    expect(documents.length).toBeGreaterThanOrEqual(1);
    const compositions = (await get(`/fhir/Composition?patient=${ref}`)).entry ?? [];
    expect(compositions).toHaveLength(1);

    // Everything under the patient is valid FHIR R4 as served.
    for (const entry of [...studies, ...documents, ...compositions]) expect(validateFhirResource(entry.resource), entry.resource.resourceType).toEqual([]);
    expect(validateFhirResource(await get(`/fhir/Patient/${patient.id}`))).toEqual([]);
  });
});
