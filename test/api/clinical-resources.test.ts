/**
 * Every resource type the mappers produce is served by the FHIR API: one fixture message of each family goes in over
 * MLLP, and each resource its expected output names can be read, and found by identifier, by patient and by code.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpTestClient, hl7Field } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

/**
 * The first fixture with an expected output (and no options of its own) in each family, plus a rich ADT. Degraded
 * fixtures (a field or resource left out with an issue) are about what is missing, so they are not picked.
 */
function corpus(): Array<{ file: string; expected: { drafts: Array<{ resourceType: string; id: string }> } }> {
  const picks: string[] = [path.join(FIXTURES, 'adt', 'a01-busan-admit-nk1-al1-dg1-in1.hl7')];
  for (const family of readdirSync(path.join(FIXTURES, 'hl7v2')).sort()) {
    const dir = path.join(FIXTURES, 'hl7v2', family);
    const name = readdirSync(dir)
      .filter((f) => f.endsWith('.expected.json'))
      .map((f) => f.slice(0, -'.expected.json'.length))
      .sort()
      .find((n) => !n.startsWith('degraded-') && !existsSync(path.join(dir, `${n}.options.json`)));
    if (name) picks.push(path.join(dir, `${name}.hl7`));
  }
  return picks.map((file) => ({ file, expected: JSON.parse(readFileSync(file.replace(/\.hl7$/, '.expected.json'), 'utf8')) }));
}

let t: TestEngine;
const messages = corpus();

beforeAll(async () => {
  t = await startTestEngine();
  const client = await MllpTestClient.connect(t.mllpPort);
  for (const { file } of messages) {
    const bytes = Buffer.from(readFileSync(file).toString('latin1').replace(/\r\n|\n/g, '\r'), 'latin1');
    expect(['AA', 'CA']).toContain(hl7Field(await client.request(bytes), 'MSA', 1));
  }
  await client.close();
  await eventually(async () => {
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
    return rows[0]!.n === 0 ? true : undefined;
  });
});
afterAll(async () => {
  await t?.destroy();
});

async function get(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { headers: authHeaders() });
  return { status: response.status, body: await response.json() };
}

describe('clinical resources over the FHIR API', () => {
  it('maps one message of every family without failure', async () => {
    expect(messages.length).toBeGreaterThanOrEqual(7);
    const failed = await t.pool.query(`SELECT control_id, error_code FROM inbox_message WHERE state = 'failed'`);
    expect(failed.rows).toEqual([]);
  });

  it('reads, and finds by identifier, patient and code, every resource the messages produced', async () => {
    const types = new Set<string>();
    for (const { expected } of messages) {
      for (const draft of expected.drafts) {
        types.add(draft.resourceType);
        const read = await get(`/fhir/${draft.resourceType}/${draft.id}`);
        expect(read.status, `${draft.resourceType}/${draft.id}`).toBe(200);
        const resource = read.body;
        const identifier = resource.identifier?.[0];
        if (identifier?.value) {
          const found = await get(`/fhir/${draft.resourceType}?identifier=${encodeURIComponent(`${identifier.system ?? ''}|${identifier.value}`)}`);
          expect(found.body.entry?.map((e: any) => e.resource.id), `${draft.resourceType} by identifier`).toContain(draft.id);
        }
        const patientRef: string | undefined = [resource.subject, resource.patient, resource.beneficiary, ...(resource.participant ?? []).map((p: any) => p.actor)]
          .map((r: any) => r?.reference)
          .find((r: unknown) => typeof r === 'string' && r.startsWith('Patient/'));
        if (patientRef && draft.resourceType !== 'Patient') {
          const byPatient = await get(`/fhir/${draft.resourceType}?patient=${patientRef}&_count=100`);
          expect(byPatient.status, `${draft.resourceType}?patient`).toBe(200);
          expect(byPatient.body.entry?.map((e: any) => e.resource.id), `${draft.resourceType} by patient`).toContain(draft.id);
        }
        const coding = (resource.code ?? resource.vaccineCode ?? resource.medicationCodeableConcept)?.coding?.[0];
        if (coding?.code && draft.resourceType !== 'Encounter') {
          const param = resource.vaccineCode ? 'vaccine-code' : 'code';
          const byCode = await get(`/fhir/${draft.resourceType}?${param}=${encodeURIComponent(`${coding.system ?? ''}|${coding.code}`)}&_count=100`);
          expect(byCode.body.entry?.map((e: any) => e.resource.id), `${draft.resourceType} by ${param}`).toContain(draft.id);
        }
      }
    }
    for (const type of ['Patient', 'Encounter', 'RelatedPerson', 'AllergyIntolerance', 'Condition', 'Coverage', 'DiagnosticReport', 'Observation', 'ServiceRequest', 'Appointment', 'Immunization', 'DocumentReference', 'MedicationRequest']) {
      expect(types, type).toContain(type);
    }
  });

  it('lists every served type, with its search parameters, in the capability statement', async () => {
    const metadata = (await fetch(`${t.httpUrl}/fhir/metadata`).then((r) => r.json())) as any;
    const served = metadata.rest[0].resource.map((r: any) => r.type);
    expect(served).toEqual(expect.arrayContaining(['Observation', 'DiagnosticReport', 'Immunization', 'Appointment']));
    const observation = metadata.rest[0].resource.find((r: any) => r.type === 'Observation');
    expect(observation.searchParam.map((p: any) => p.name)).toEqual(expect.arrayContaining(['patient', 'code', 'status']));
    const operations = metadata.rest[0].resource.filter((r: any) => r.operation).flatMap((r: any) => r.operation.map((o: any) => `${r.type}/$${o.name}`));
    expect(operations).toEqual(['Patient/$everything', 'Composition/$document', 'CodeSystem/$lookup', 'CodeSystem/$validate-code', 'ConceptMap/$translate']);
  });
});
