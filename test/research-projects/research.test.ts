/**
 * Research projects end to end, on a real engine and PostgreSQL: a steward defines a project (ResearchStudy, cohort
 * Group, release settings), the cohort is narrowed by consent (opt-in: a patient without a research permit is left
 * out), a release below k is refused, a release is published into the research schema, a researcher (an OAuth
 * client holding research/<id> only) searches it and runs a Bulk Data export, another project's researcher is
 * refused, a new message refreshes the projection, and every use is an AuditEvent: found by one search on the study,
 * and the release seen by the patient in their own trail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { research } from '../../store/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { segment } from '../support/messages.ts';
import { startTestIdp, type TestIdp } from '../support/idp.ts';

const ts = '20261201093000';
const GLUCOSE = '2345-7';
const HRESCH = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const ACTIVITY = 'urn:anchorline:research-activity';

let t: TestEngine;
let idp: TestIdp;
/** Clinical references of the patients, by MRN. */
const patients: Record<string, string> = {};
/** The research permits written, by MRN. */
const permits: Record<string, string> = {};

/** An ADT^A01 and an ORU^R01 with one glucose result, for one patient. */
function messages(mrn: string, sex: 'F' | 'M', birth: string, value: string, suffix = ''): string[] {
  const msh = (type: string, control: string): string => segment('MSH', { 2: '^~\\&', 3: 'LIS', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: ts, 9: type, 10: control, 11: 'P', 12: '2.5.1', 18: 'UNICODE UTF-8' });
  const pid = segment('PID', { 1: '1', 3: `${mrn}^^^SNUH^MR`, 5: `Name${mrn}^Given`, 7: birth, 8: sex });
  const adt = [msh('ADT^A01^ADT_A01', `RS-ADT-${mrn}${suffix}`), segment('EVN', { 1: 'A01', 2: ts }), pid, segment('PV1', { 1: '1', 2: 'I', 3: 'W1^101^A', 19: `V-${mrn}${suffix}`, 44: ts })].join('\r') + '\r';
  const oru = [
    msh('ORU^R01^ORU_R01', `RS-ORU-${mrn}${suffix}`),
    pid,
    segment('OBR', { 1: '1', 2: `ORD-${mrn}${suffix}`, 3: `LAB-${mrn}${suffix}`, 4: 'GLU^Glucose^L', 7: ts, 25: 'F' }),
    segment('OBX', { 1: '1', 2: 'NM', 3: `${GLUCOSE}^Glucose [Mass/volume] in Serum or Plasma^LN`, 5: value, 6: 'mg/dL', 11: 'F', 14: ts }),
  ].join('\r') + '\r';
  return suffix ? [oru] : [adt, oru];
}

async function ingest(list: string[]): Promise<void> {
  for (const message of list) {
    const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: message });
    expect(response.status).toBeLessThan(300);
  }
  await eventually(async () => {
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state NOT IN ('done')`);
    return rows[0]!.n === 0 ? true : undefined;
  });
}

interface Answer {
  status: number;
  body: any;
  code: string | null;
  headers: Headers;
}

async function call(method: string, url: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(url.startsWith('http') ? url : `${t.httpUrl}${url}`, {
    method,
    headers: {
      authorization: `Bearer ${options.token ?? authHeaders().authorization!.slice('Bearer '.length)}`,
      ...(options.body !== undefined ? { 'content-type': url.startsWith('/fhir') ? 'application/fhir+json' : 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // NDJSON and other text stay text.
  }
  return { status: response.status, body, code: response.headers.get('x-anchorline-error'), headers: response.headers };
}

/** A researcher's access token (client credentials). */
async function tokenOf(client: { clientId: string; clientSecret: string }): Promise<string> {
  const response = await fetch(`${t.httpUrl}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

/** A consent by which the patient permits research use of their records. */
function researchPermit(patient: string): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: patient },
    dateTime: '2026-12-01T09:00:00+09:00',
    performer: [{ reference: patient }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type: 'permit', purpose: [{ system: HRESCH, code: 'HRESCH' }] },
  };
}

const criterion = (code: string, rest: Record<string, unknown>): Record<string, unknown> => ({ code: { coding: [{ system: 'urn:anchorline:research-criterion', code }] }, exclude: false, ...rest });

/** Who had glucose measured; narrowed to women once a release is refused below k. */
function cohortGroup(womenOnly: boolean): Record<string, unknown> {
  return {
    resourceType: 'Group',
    id: 'glucose-cohort',
    type: 'person',
    actual: false,
    characteristic: [
      criterion('observation', { valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: GLUCOSE }] } }),
      ...(womenOnly ? [criterion('gender', { valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/administrative-gender', code: 'female' }] } })] : []),
    ],
  };
}

const SETTINGS = { group: 'Group/glucose-cohort', releasedTypes: ['Patient', 'Observation'], elements: { Observation: ['status', 'code', 'subject', 'effectiveDateTime', 'valueQuantity'] }, quasiIdentifiers: ['gender', 'birthYear'], k: 2 };

let researcher: string;
let otherResearcher: string;

beforeAll(async () => {
  idp = await startTestIdp('https://idp.hospital.test', 'anchorline-research-test');
  t = await startTestEngine({
    overrides: {
      auth: { externalIdp: idp.externalIdp },
      consent: { default: 'opt-in' },
      research: { refreshIntervalMs: 300, settleMs: 200 },
      // Patients' records sealed under their keys: the research projection reads through them, and an erasure
      // reaches the research database.
      encryption: { enabled: true },
    },
  });
  // A and B: research permits; C: no consent (opt-in: excluded); D: a permit, and alone in his class (below k).
  await ingest([...messages('RS-A', 'F', '19850203', '118'), ...messages('RS-B', 'F', '19850611', '131'), ...messages('RS-C', 'F', '19850920', '99'), ...messages('RS-D', 'M', '19700101', '140')]);
  for (const mrn of ['RS-A', 'RS-B', 'RS-C', 'RS-D']) {
    const found = await call('GET', `/fhir/Patient?identifier=${mrn}`);
    expect(found.body.entry).toHaveLength(1);
    patients[mrn] = `Patient/${found.body.entry[0].resource.id}`;
  }
  for (const mrn of ['RS-A', 'RS-B', 'RS-D']) {
    const written = await call('POST', '/fhir/Consent', { body: researchPermit(patients[mrn]!) });
    expect(written.status).toBe(201);
    permits[mrn] = written.body.id;
  }
  expect((await call('POST', '/admin/users', { body: { username: 'patient-a', role: 'patient', fhirUser: patients['RS-A'], displayName: 'Patient A', patients: [patients['RS-A']], externalSubject: 'sub-research-a' } })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  const schema = t?.config.database.schema;
  await t?.destroy();
  if (schema) {
    const { default: pg } = await import('pg');
    const { testDatabaseUrl } = await import('../support/db.ts');
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "${research.researchSchema(schema)}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
  await idp?.close();
});

describe('research projects', () => {
  it('lets a data steward define a project: ResearchStudy, cohort Group and settings, each recorded', async () => {
    // A steward: a system credential holding research-admin only.
    const key = await call('POST', '/admin/api-keys', { body: { name: 'data steward', scopes: ['research-admin'] } });
    expect(key.status).toBe(201);
    const steward = key.body.key as string;
    expect((await call('GET', '/fhir/Patient', { token: steward })).status).toBe(403);

    const group = await call('PUT', '/fhir/Group/glucose-cohort', { token: steward, body: cohortGroup(false) });
    expect(group.status).toBe(201);
    expect(group.body).toMatchObject({ resourceType: 'Group', id: 'glucose-cohort', meta: { versionId: '1' } });
    const badGroup = await call('PUT', '/fhir/Group/bad', { token: steward, body: { resourceType: 'Group', id: 'bad', type: 'person', actual: true, characteristic: [criterion('shoe-size', { valueBoolean: true })] } });
    expect(badGroup.status).toBe(422);
    expect(badGroup.code).toBe('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID');

    const study = { resourceType: 'ResearchStudy', id: 'glucose-study', status: 'active', title: 'Fasting glucose in adults', enrollment: [{ reference: 'Group/glucose-cohort' }] };
    const written = await call('PUT', '/fhir/ResearchStudy/glucose-study', { token: steward, body: study });
    expect(written.status).toBe(201);

    const settings = await call('PUT', '/research/projects/glucose-study', { token: steward, body: SETTINGS });
    expect(settings.status).toBe(201);
    expect(settings.body).toMatchObject({ id: 'glucose-study', version: 1, k: 2, releasedTypes: ['Patient', 'Observation'] });
    expect(settings.body.deidConfigSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(settings.body)).not.toMatch(/secret/i);

    // Stored like every resource: versioned, with a leaf.
    const leaves = await t.pool.query(`SELECT resource_type FROM ledger_leaf WHERE resource_type IN ('ResearchStudy', 'Group') AND resource_id IN ('glucose-study', 'glucose-cohort')`);
    expect(leaves.rows.map((r) => r.resource_type).sort()).toEqual(['Group', 'ResearchStudy']);
    expect((await call('GET', '/research/projects/glucose-study', { token: steward })).body.releases).toEqual([]);

    const client = await call('POST', '/research/projects/glucose-study/researchers', { token: steward, body: { name: 'Dr Researcher, University Hospital' } });
    expect(client.status).toBe(201);
    expect(client.body.scopes).toEqual(['research/glucose-study']);
    researcher = await tokenOf(client.body);
  });

  it('refuses a release below k, reporting the offending groups by size without identifiers', async () => {
    const refused = await call('POST', '/research/projects/glucose-study/$release', { body: {} });
    expect(refused.status).toBe(422);
    expect(refused.code).toBe('ANCHORLINE_ERR_RESEARCH_K_ANONYMITY');
    expect(refused.body.resourceType).toBe('OperationOutcome');
    // D is alone (male, 1970); C is not counted at all: no research permit under opt-in.
    expect(refused.body.report).toMatchObject({ outcome: 'refused', cohortSize: 3, excludedByConsent: 1, published: 0 });
    expect(refused.body.report.risk.offending).toEqual([{ values: { gender: 'male', birthYear: '1970' }, size: 1 }]);
    const text = JSON.stringify(refused.body);
    for (const patient of Object.values(patients)) expect(text).not.toContain(patient.slice('Patient/'.length));
    expect(text).not.toMatch(/RS-[ABCD]/);
    const count = await t.pool.query(`SELECT count(*)::int AS n FROM "${research.researchSchema(t.config.database.schema)}".resource`);
    expect(count.rows[0].n).toBe(0);
  });

  it('releases the consenting cohort into the research schema, never the clinical ids', async () => {
    expect((await call('PUT', '/fhir/Group/glucose-cohort', { body: cohortGroup(true) })).status).toBe(200);
    const released = await call('POST', '/research/projects/glucose-study/$release', { body: {} });
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({ outcome: 'published', cohortSize: 2, excludedByConsent: 1, published: 4, removed: 0 });
    expect(released.body.risk).toMatchObject({ k: 2, groups: 1, smallestGroup: 2, offending: [] });

    const rows = await t.pool.query(`SELECT resource_type, id, patient, content::text AS content, source_hash FROM "${research.researchSchema(t.config.database.schema)}".resource ORDER BY resource_type, id`);
    expect(rows.rows.map((r) => r.resource_type)).toEqual(['Observation', 'Observation', 'Patient', 'Patient']);
    const everything = JSON.stringify(rows.rows);
    for (const patient of Object.values(patients)) expect(everything).not.toContain(patient.slice('Patient/'.length));
    expect(everything).not.toMatch(/RS-[ABCD]|NameRS/);
    const releases = await call('GET', '/research/projects/glucose-study');
    expect(releases.body.releases.map((r: any) => [r.kind, r.outcome])).toEqual([['release', 'published'], ['release', 'refused']]);
  });

  it('answers a researcher\'s FHIR search on the research data, and nothing of the clinical API', async () => {
    const observations = await call('GET', `/research/projects/glucose-study/fhir/Observation?code=http://loinc.org|${GLUCOSE}&_count=10`, { token: researcher });
    expect(observations.status).toBe(200);
    expect(observations.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 2 });
    const pseudonym = observations.body.entry[0].resource.subject.reference as string;
    expect(pseudonym).toMatch(/^Patient\//);
    expect(Object.values(patients)).not.toContain(pseudonym);
    const ofOne = await call('GET', `/research/projects/glucose-study/fhir/Observation?patient=${pseudonym}`, { token: researcher });
    expect(ofOne.body.total).toBe(1);
    const patientsThere = await call('GET', `/research/projects/glucose-study/fhir/Patient?_id=${pseudonym.slice('Patient/'.length)}`, { token: researcher });
    expect(patientsThere.body.total).toBe(1);
    // Dates are shifted per patient, but stay dates: the whole range finds both, a range before any finds none.
    expect((await call('GET', '/research/projects/glucose-study/fhir/Observation?date=ge2020-01-01&date=le2030-12-31', { token: researcher })).body.total).toBe(2);
    expect((await call('GET', '/research/projects/glucose-study/fhir/Observation?date=lt1990-01-01', { token: researcher })).body.total).toBe(0);
    expect((await call('GET', '/research/projects/glucose-study/fhir/Observation?name=x', { token: researcher })).status).toBe(400);
    // Nothing of the clinical store, and not the steward's routes.
    expect((await call('GET', '/fhir/Patient', { token: researcher })).status).toBe(403);
    expect((await call('GET', `/fhir/${patients['RS-A']}`, { token: researcher })).status).toBe(403);
    expect((await call('POST', '/research/projects/glucose-study/$release', { token: researcher, body: {} })).status).toBe(403);
  });

  it('serves the same projection as OMOP CDM tables (person, observation_period, condition_occurrence, measurement)', async () => {
    const csv = async (table: string): Promise<string[][]> => {
      const response = await call('GET', `/research/projects/glucose-study/omop/${table}`, { token: researcher });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/csv');
      return (response.body as string).trim().split('\r\n').map((line) => line.split(','));
    };
    const person = await csv('person');
    expect(person[0]!.slice(0, 3)).toEqual(['person_id', 'gender_concept_id', 'year_of_birth']);
    expect(person.slice(1).map((row) => [row[1], row[2]])).toEqual([['8532', '1985'], ['8532', '1985']]);
    const measurement = await csv('measurement');
    expect(measurement).toHaveLength(3);
    expect(measurement.slice(1).map((row) => row[7])).toEqual([`http://loinc.org|${GLUCOSE}`, `http://loinc.org|${GLUCOSE}`]);
    // Every measurement belongs to a person of the person table.
    const people = new Set(person.slice(1).map((row) => row[0]));
    for (const row of measurement.slice(1)) expect(people.has(row[1]!)).toBe(true);
    expect(await csv('observation_period')).toHaveLength(3);
    expect(await csv('condition_occurrence')).toHaveLength(1);
    expect((await call('GET', '/research/projects/glucose-study/omop/drug_exposure', { token: researcher })).status).toBe(404);
    expect(JSON.stringify(person)).not.toContain(patients['RS-A']!.slice('Patient/'.length));
  });

  it('keeps projects apart: another project\'s researcher is refused, and the same patient has other pseudonyms', async () => {
    expect((await call('PUT', '/fhir/Group/ab-cohort', { body: { resourceType: 'Group', id: 'ab-cohort', type: 'person', actual: true, member: [{ entity: { reference: patients['RS-A'] } }, { entity: { reference: patients['RS-B'] } }] } })).status).toBe(201);
    expect((await call('PUT', '/fhir/ResearchStudy/second-study', { body: { resourceType: 'ResearchStudy', id: 'second-study', status: 'active', enrollment: [{ reference: 'Group/ab-cohort' }] } })).status).toBe(201);
    expect((await call('PUT', '/research/projects/second-study', { body: { ...SETTINGS, group: 'Group/ab-cohort' } })).status).toBe(201);
    expect((await call('POST', '/research/projects/second-study/$release', { body: {} })).status).toBe(200);
    const client = await call('POST', '/research/projects/second-study/researchers', { body: { name: 'Another team' } });
    otherResearcher = await tokenOf(client.body);

    const refused = await call('GET', '/research/projects/glucose-study/fhir/Observation', { token: otherResearcher });
    expect(refused.status).toBe(403);
    expect(refused.code).toBe('ANCHORLINE_ERR_FORBIDDEN');
    expect((await call('GET', '/research/projects/glucose-study/fhir/Group/glucose-cohort/$export', { token: otherResearcher, headers: { prefer: 'respond-async' } })).status).toBe(403);

    const first = await call('GET', '/research/projects/glucose-study/fhir/Patient', { token: researcher });
    const second = await call('GET', '/research/projects/second-study/fhir/Patient', { token: otherResearcher });
    const ids = (bundle: any): string[] => bundle.entry.map((e: any) => e.resource.id as string);
    expect(ids(first.body)).toHaveLength(2);
    expect(ids(second.body)).toHaveLength(2);
    expect(ids(first.body).filter((id) => ids(second.body).includes(id))).toEqual([]);
  });

  it('rotates a project secret: a new settings version, and every pseudonym changes at the next release', async () => {
    const ids = async (): Promise<string[]> => (await call('GET', '/research/projects/second-study/fhir/Patient', { token: otherResearcher })).body.entry.map((e: any) => e.resource.id as string).sort();
    const before = await ids();
    const rotated = await call('POST', '/research/projects/second-study/$rotate-secret');
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ version: 2, deidConfigSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // The worker may refresh the project under its new secret first; either way the release ends on version 2.
    const released = await call('POST', '/research/projects/second-study/$release', { body: {} });
    expect(released.body).toMatchObject({ outcome: 'published', projectVersion: 2 });
    const after = await ids();
    expect(after).toHaveLength(2);
    expect(after.filter((id) => before.includes(id))).toEqual([]);
    const count = await t.pool.query(`SELECT count(*)::int AS n FROM "${research.researchSchema(t.config.database.schema)}".resource WHERE project_id = 'second-study'`);
    expect(count.rows[0].n).toBe(4);
    // A completed study gets no more data.
    expect((await call('PUT', '/fhir/ResearchStudy/second-study', { body: { resourceType: 'ResearchStudy', id: 'second-study', status: 'completed', enrollment: [{ reference: 'Group/ab-cohort' }] } })).status).toBe(200);
    const closed = await call('POST', '/research/projects/second-study/$release', { body: {} });
    expect(closed.status).toBe(422);
    expect(closed.code).toBe('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID');
  });

  it('serves a Bulk Data $export: kick-off, status polling, manifest, NDJSON with the token, _type, cancel', async () => {
    const base = '/research/projects/glucose-study/fhir/Group/glucose-cohort/$export';
    expect((await call('GET', base, { token: researcher })).status).toBe(400);
    expect((await call('GET', `${base}?_elements=id`, { token: researcher, headers: { prefer: 'respond-async' } })).status).toBe(400);
    const kickOff = await call('GET', base, { token: researcher, headers: { prefer: 'respond-async', accept: 'application/fhir+json' } });
    expect(kickOff.status).toBe(202);
    const status = kickOff.headers.get('content-location')!;
    expect(status).toMatch(/\/research\/projects\/glucose-study\/\$export-status\/[0-9a-f-]{36}$/);
    // Only the credential that started it sees it.
    expect((await call('GET', status.replace('glucose-study', 'second-study'), { token: otherResearcher })).status).toBe(404);

    const polls: number[] = [];
    const done = await eventually(async () => {
      const poll = await call('GET', status, { token: researcher });
      polls.push(poll.status);
      if (poll.status === 202) expect(poll.headers.get('x-progress')).toBeTruthy();
      return poll.status === 200 ? poll : undefined;
    }, 20_000, 'the export to complete');
    expect(polls.every((s) => s === 202 || s === 200)).toBe(true);
    expect(done.body).toMatchObject({ requiresAccessToken: true, error: [] });
    expect(done.body.request).toContain('/research/projects/glucose-study/fhir/Group/glucose-cohort/$export');
    expect(Date.parse(done.body.transactionTime)).not.toBeNaN();
    expect(done.body.output.map((o: any) => [o.type, o.count])).toEqual([['Observation', 2], ['Patient', 2]]);

    const file = done.body.output.find((o: any) => o.type === 'Observation').url as string;
    expect((await fetch(file)).status).toBe(401);
    const ndjson = await fetch(file, { headers: { authorization: `Bearer ${researcher}` } });
    expect(ndjson.status).toBe(200);
    expect(ndjson.headers.get('content-type')).toContain('application/fhir+ndjson');
    const lines = (await ndjson.text()).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((r) => r.resourceType)).toEqual(['Observation', 'Observation']);
    expect(JSON.stringify(lines)).not.toContain(patients['RS-A']!.slice('Patient/'.length));

    const onlyPatients = await call('GET', `${base}?_type=Patient&_outputFormat=application/fhir%2Bndjson`, { token: researcher, headers: { prefer: 'respond-async' } });
    const manifest = await eventually(async () => {
      const poll = await call('GET', onlyPatients.headers.get('content-location')!, { token: researcher });
      return poll.status === 200 ? poll.body : undefined;
    }, 20_000, 'the _type export');
    expect(manifest.output.map((o: any) => o.type)).toEqual(['Patient']);
    const later = await call('GET', `${base}?_since=2999-01-01T00:00:00Z`, { token: researcher, headers: { prefer: 'respond-async' } });
    const none = await eventually(async () => {
      const poll = await call('GET', later.headers.get('content-location')!, { token: researcher });
      return poll.status === 200 ? poll.body : undefined;
    }, 20_000, 'the _since export');
    expect(none.output).toEqual([]);

    expect((await call('DELETE', status, { token: researcher })).status).toBe(202);
    expect((await call('GET', status, { token: researcher })).status).toBe(404);
    expect((await fetch(file, { headers: { authorization: `Bearer ${researcher}` } })).status).toBe(404);
  });

  it('refreshes the projection when a new message arrives for a cohort member', async () => {
    const before = BigInt((await t.pool.query<{ id: string }>('SELECT max(id) AS id FROM ledger_leaf')).rows[0]!.id);
    await ingest(messages('RS-A', 'F', '19850203', '125', '-2'));
    // What the refresh recomputes: the one patient the new versions are about, not the whole cohort.
    const { changes, truncated } = await research.changesSince(t.pool, before, 1_000);
    expect(truncated).toBe(false);
    expect(changes.map((c) => c.resourceType)).toContain('Observation');
    expect(await research.patientsConcerned(t.pool, 'glucose-study', changes)).toEqual([patients['RS-A']]);
    await eventually(async () => {
      const found = await call('GET', `/research/projects/glucose-study/fhir/Observation?code=${GLUCOSE}`, { token: researcher });
      return found.body.total === 3 ? true : undefined;
    }, 20_000, 'the refresh to publish the new result');
    const releases = (await call('GET', '/research/projects/glucose-study')).body.releases;
    expect(releases[0]).toMatchObject({ kind: 'refresh', outcome: 'published', published: 1, removed: 0 });
    const event = await call('GET', `/fhir/AuditEvent/${releases[0].auditEventId}`);
    expect(event.body.outcomeDesc).toContain('1 resource(s) published');
    // The refresh concerned patient A alone: one event names A, none names B.
    const about = async (mrn: string): Promise<number> => (await call('GET', `/fhir/AuditEvent?entity=ResearchStudy/glucose-study&patient=${patients[mrn]}&subtype=${ACTIVITY}|refresh`)).body.total;
    expect(await about('RS-A')).toBe(1);
    expect(await about('RS-B')).toBe(0);
  });

  it('records every use as an AuditEvent found by one search, and shows the release to the patient', async () => {
    const usage = await call('GET', '/fhir/AuditEvent?entity=ResearchStudy/glucose-study&_count=100');
    expect(usage.status).toBe(200);
    const events = usage.body.entry.map((e: any) => e.resource);
    const activities = new Set(events.map((e: any) => e.subtype.find((s: any) => s.system === ACTIVITY)?.code));
    for (const activity of ['define', 'release', 'query', 'export', 'refresh']) expect(activities.has(activity), activity).toBe(true);
    for (const event of events) expect(event.purposeOfEvent[0].coding[0]).toMatchObject({ system: HRESCH, code: 'HRESCH' });
    // Each is anchored like every record: a leaf per event.
    const ids = events.map((e: any) => e.id);
    const leaves = await t.pool.query(`SELECT count(*)::int AS n FROM ledger_leaf WHERE resource_type = 'AuditEvent' AND resource_id = ANY($1::text[])`, [ids]);
    expect(leaves.rows[0].n).toBe(ids.length);
    // The release names the patients whose data it released, one event each (BALP); C and D are not among them.
    const releases = events.filter((e: any) => e.subtype.some((s: any) => s.code === 'release') && e.outcome === '0');
    const named = releases.flatMap((e: any) => e.entity.filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference)).sort();
    expect(named).toEqual([patients['RS-A'], patients['RS-B']].sort());
    expect(named).not.toContain(patients['RS-D']);
    expect(named).not.toContain(patients['RS-C']);

    // The patient's own view of the trail shows the research use of their data.
    const patientToken = await idp.token('sub-research-a', 'patient/AuditEvent.rs', 'portal');
    const own = await call('GET', `/fhir/AuditEvent?patient=${patients['RS-A']}&purpose=HRESCH&_count=100`, { token: patientToken });
    expect(own.status).toBe(200);
    const seen = own.body.entry.map((e: any) => e.resource);
    expect(seen.some((e: any) => e.subtype.some((s: any) => s.system === ACTIVITY && s.code === 'release') && e.entity.some((x: any) => x.what?.reference === 'ResearchStudy/glucose-study'))).toBe(true);
    // Patient C's data was never released: no research event names them.
    const c = await call('GET', `/fhir/AuditEvent?patient=${patients['RS-C']}&purpose=HRESCH`);
    expect(c.body.total).toBe(0);
  });

  it('removes a patient who withdraws consent at the next refresh, and suppresses a class left below k', async () => {
    const withdrawn = await call('PUT', `/fhir/Consent/${permits['RS-B']}`, { body: { ...researchPermit(patients['RS-B']!), id: permits['RS-B'], status: 'inactive' } });
    expect(withdrawn.status).toBe(200);
    // B's rows go; A, now alone in the women born in 1985, is suppressed rather than published below k.
    await eventually(async () => {
      const found = await call('GET', '/research/projects/glucose-study/fhir/Patient', { token: researcher });
      return found.body.total === 0 ? true : undefined;
    }, 20_000, 'the refresh to remove the withdrawn patient');
    const latest = (await call('GET', '/research/projects/glucose-study')).body.releases[0];
    expect(latest).toMatchObject({ kind: 'refresh', outcome: 'published', published: 0, removed: 5, excludedByConsent: 2 });
    expect(latest.risk.suppressedPatients).toBe(1);
    const aboutB = await call('GET', `/fhir/AuditEvent?entity=ResearchStudy/glucose-study&patient=${patients['RS-B']}&subtype=${ACTIVITY}|refresh`);
    expect(aboutB.body.total).toBe(1);
  });

  it('takes in a new patient who comes to match the Group\'s criteria, and publishes a suppressed classmate again', async () => {
    await ingest(messages('RS-E', 'F', '19851130', '107'));
    const found = await call('GET', '/fhir/Patient?identifier=RS-E');
    patients['RS-E'] = `Patient/${found.body.entry[0].resource.id}`;
    expect((await call('POST', '/fhir/Consent', { body: researchPermit(patients['RS-E']) })).status).toBe(201);
    // E matches (a woman with a glucose result) and permits research; with E, A's class reaches k again.
    await eventually(async () => {
      const published = await call('GET', '/research/projects/glucose-study/fhir/Patient', { token: researcher });
      return published.body.total === 2 ? true : undefined;
    }, 20_000, 'the refresh to publish E and A');
    expect((await call('GET', `/research/projects/glucose-study/fhir/Observation?code=${GLUCOSE}`, { token: researcher })).body.total).toBe(3);
    const latest = (await call('GET', '/research/projects/glucose-study')).body.releases[0];
    expect(latest).toMatchObject({ kind: 'refresh', outcome: 'published', removed: 0 });
    expect(latest.risk.suppressedPatients).toBeUndefined();
  });
  it('forgets an erased patient in every project: the research rows and the projection map go with the keys', async () => {
    const patient = patients['RS-E']!;
    const before = await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM research_projection WHERE patient = $1', [patient]);
    expect(before.rows[0]!.n).toBeGreaterThan(0);
    const erased = await call('POST', `/admin/patients/${patient.slice('Patient/'.length)}/$erase`, { body: { reason: 'erasure request 2026-12' } });
    expect(erased.status).toBe(200);
    expect(erased.body.researchRows).toBe(before.rows[0]!.n);
    const after = await t.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM research_projection WHERE patient = $1', [patient]);
    expect(after.rows[0]!.n).toBe(0);
    // What researchers can still find is A's alone: nothing of E's remains under any pseudonym.
    const published = await call('GET', `/research/projects/glucose-study/fhir/Observation?code=${GLUCOSE}`, { token: researcher });
    expect(published.body.total).toBeLessThan(3);
  });
});
