/**
 * Consent on every read, end to end: a real engine with records mapped from HL7 v2, people whose tokens come from a
 * hospital identity provider (a key pair and JWKS served here: the provider is outside the engine), consents written
 * through POST/PUT /fhir/Consent, and reads by id, search, $everything, history and proofs, each checked against
 * what the patient's consent says and against the AuditEvent the read left.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { segment } from '../support/messages.ts';
import { startTestIdp, type TestIdp } from '../support/idp.ts';

let t: TestEngine;
let idp: TestIdp;

const ts = '20261201093000';
/** Patient A at SNUH: admitted with a depressive episode (ICD-10 F32.9: mental health), and a glucose result. */
const ADT_A = [
  segment('MSH', { 2: '^~\\&', 3: 'EMR', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: ts, 9: 'ADT^A01^ADT_A01', 10: 'CE-ADT-A', 11: 'P', 12: '2.5.1', 18: 'UNICODE UTF-8' }),
  segment('EVN', { 1: 'A01', 2: ts }),
  segment('PID', { 1: '1', 3: 'CE-A^^^SNUH^MR', 5: '김^서연', 7: '19850203', 8: 'F' }),
  segment('PV1', { 1: '1', 2: 'I', 3: 'W1^101^A', 19: 'VCE-A', 44: ts }),
  segment('DG1', { 1: '1', 2: 'I10', 3: 'F32.9^Depressive episode, unspecified^I10', 6: 'A' }),
].join('\r') + '\r';
const ORU_A = [
  segment('MSH', { 2: '^~\\&', 3: 'LIS', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: ts, 9: 'ORU^R01^ORU_R01', 10: 'CE-ORU-A', 11: 'P', 12: '2.5.1', 18: 'UNICODE UTF-8' }),
  segment('PID', { 1: '1', 3: 'CE-A^^^SNUH^MR', 5: '김^서연', 7: '19850203', 8: 'F' }),
  segment('OBR', { 1: '1', 2: 'ORD-CE-1', 3: 'LAB-CE-1', 4: 'GLU^Glucose^L', 7: ts, 25: 'F' }),
  segment('OBX', { 1: '1', 2: 'NM', 3: '2345-7^Glucose [Mass/volume] in Serum or Plasma^LN', 5: '118', 6: 'mg/dL', 11: 'F', 14: ts }),
].join('\r') + '\r';
const ADT_B = [
  segment('MSH', { 2: '^~\\&', 3: 'EMR', 4: 'SNUH', 5: 'ANCHORLINE', 6: 'HUB', 7: ts, 9: 'ADT^A01^ADT_A01', 10: 'CE-ADT-B', 11: 'P', 12: '2.5.1' }),
  segment('EVN', { 1: 'A01', 2: ts }),
  segment('PID', { 1: '1', 3: 'CE-B^^^SNUH^MR', 5: 'Lee^Minho', 7: '19700101', 8: 'M' }),
  segment('PV1', { 1: '1', 2: 'I', 3: 'W2^201^A', 19: 'VCE-B', 44: ts }),
].join('\r') + '\r';

let patientA: string;
let patientB: string;

async function admin(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { method, headers: { ...authHeaders(), ...(body ? { 'content-type': url.startsWith('/fhir') ? 'application/fhir+json' : 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: response.status, body: response.status === 204 ? undefined : await response.json() };
}

/** An access token of the hospital's identity provider for the account with `subject`. */
function token(subject: string, scope: string): Promise<string> {
  return idp.token(subject, scope);
}

async function as(subject: string, scope: string, url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; code: string | null }> {
  const response = await fetch(`${t.httpUrl}${url}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${await token(subject, scope)}`, ...(init.body ? { 'content-type': 'application/fhir+json' } : {}), ...init.headers },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, code: response.headers.get('x-anchorline-error') };
}

const CLINICIAN = 'user/*.rs';
const ids = (bundle: any): string[] => (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'outcome').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();

/** Patient A's consent: Dr Kim may read everything for treatment from 2026 on, except mental health (a nested deny). */
function consentForKim(id?: string, status = 'active', end?: string): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    ...(id ? { id } : {}),
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: patientA },
    dateTime: '2026-12-01T09:00:00+09:00',
    performer: [{ reference: patientA }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: {
      type: 'permit',
      period: { start: '2026-01-01', ...(end ? { end } : {}) },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: 'Practitioner/dr-kim' } }],
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      provision: [{ type: 'deny', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] }],
    },
  };
}

beforeAll(async () => {
  idp = await startTestIdp();
  t = await startTestEngine({ overrides: { auth: { externalIdp: idp.externalIdp }, consent: { default: 'opt-in', breakGlassRoles: ['emergency'] } } });

  for (const message of [ADT_A, ORU_A, ADT_B]) {
    const response = await fetch(`${t.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: message });
    expect(response.status).toBeLessThan(300);
  }
  await eventually(async () => {
    const { rows } = await t.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state NOT IN ('done')`);
    return rows[0]!.n === 0 ? true : undefined;
  });
  const find = async (mrn: string): Promise<string> => {
    const found = await admin('GET', `/fhir/Patient?identifier=${mrn}`);
    expect(found.body.entry).toHaveLength(1);
    return `Patient/${found.body.entry[0].resource.id}`;
  };
  patientA = await find('CE-A');
  patientB = await find('CE-B');

  const accounts = [
    { username: 'seoyeon', role: 'patient', fhirUser: patientA, displayName: 'Kim Seoyeon', patients: [patientA], externalSubject: 'sub-patient-a' },
    { username: 'guardian', role: 'representative', fhirUser: 'RelatedPerson/guardian-a', displayName: 'Guardian of A', patients: [patientA], externalSubject: 'sub-guardian' },
    { username: 'drkim', role: 'practitioner', fhirUser: 'Practitioner/dr-kim', displayName: 'Dr Kim', organization: 'Organization/snuh', externalSubject: 'sub-kim' },
    { username: 'drlee', role: 'practitioner', fhirUser: 'Practitioner/dr-lee', displayName: 'Dr Lee', organization: 'Organization/other', externalSubject: 'sub-lee' },
    { username: 'erdoc', role: 'practitioner', fhirUser: 'Practitioner/dr-er', displayName: 'Dr Er', roles: ['emergency'], externalSubject: 'sub-er' },
  ];
  for (const account of accounts) expect((await admin('POST', '/admin/users', account)).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await t?.destroy();
  await idp?.close();
});

/** The newest read AuditEvent written for an agent (altId `user/<id>`), as the audit scope sees it. */
async function lastReadBy(username: string): Promise<any> {
  const { body: account } = await admin('GET', '/admin/users');
  const user = (account.users ?? account).find((u: any) => u.username === username);
  const events = await admin('GET', `/fhir/AuditEvent?altid=user/${user.id}&_count=1`);
  return events.body.entry?.[0]?.resource;
}

describe('consent on every read by a person', () => {
  it('opt-in: without a consent a clinician sees nothing of the patient, and cannot tell it exists', async () => {
    const read = await as('sub-kim', CLINICIAN, `/fhir/${patientA}`);
    expect(read.status).toBe(404);
    const search = await as('sub-kim', CLINICIAN, `/fhir/Observation?patient=${patientA}`);
    expect(search.status).toBe(200);
    expect(search.body.total).toBe(0);
    expect(ids(search.body)).toEqual([]);
    // The same reads by a system key are unaffected.
    expect((await admin('GET', `/fhir/${patientA}`)).status).toBe(200);
    expect((await admin('GET', `/fhir/Observation?patient=${patientA}`)).body.total).toBeGreaterThan(0);
  });

  it('the patient reads their own record and writes a consent; the named clinician then reads all but the mental-health record', async () => {
    const own = await as('sub-patient-a', 'patient/*.rs', `/fhir/${patientA}/$everything`);
    expect(own.status).toBe(200);
    const types = new Set(ids(own.body).map((r) => r.split('/')[0]));
    expect([...types]).toEqual(expect.arrayContaining(['Patient', 'Condition', 'Observation']));
    // Patient A's token does not reach patient B.
    expect((await as('sub-patient-a', 'patient/*.rs', `/fhir/${patientB}`)).status).toBe(404);

    const written = await as('sub-patient-a', 'patient/Consent.cu patient/*.rs', '/fhir/Consent', { method: 'POST', body: consentForKim() });
    expect(written.status).toBe(201);
    const consentId = written.body.id as string;

    const everything = await as('sub-kim', CLINICIAN, `/fhir/${patientA}/$everything`);
    expect(everything.status).toBe(200);
    const seen = ids(everything.body);
    expect(seen).toContain(patientA);
    expect(seen.some((r) => r.startsWith('Observation/'))).toBe(true);
    expect(seen.some((r) => r.startsWith('Condition/'))).toBe(false);
    expect(everything.body.total).toBe(seen.length);
    // Search and read by id agree, and the withheld Condition reads as absent.
    const conditions = await as('sub-kim', CLINICIAN, `/fhir/Condition?patient=${patientA}`);
    expect(conditions.body.total).toBe(0);
    // A count counts only what the person may see: the withheld Condition is not there to count either.
    expect((await as('sub-kim', CLINICIAN, `/fhir/Condition?patient=${patientA}&_summary=count`)).body).toMatchObject({ total: 0 });
    expect((await admin('GET', `/fhir/Condition?patient=${patientA}&_summary=count`)).body.total).toBeGreaterThan(0);
    const observationCount = await as('sub-kim', CLINICIAN, `/fhir/Observation?patient=${patientA}&_summary=count`);
    expect(observationCount.body.entry).toEqual([]);
    expect(observationCount.body.total).toBe((await as('sub-kim', CLINICIAN, `/fhir/Observation?patient=${patientA}`)).body.total);
    const conditionId = (await admin('GET', `/fhir/Condition?patient=${patientA}`)).body.entry[0].resource.id;
    expect((await as('sub-kim', CLINICIAN, `/fhir/Condition/${conditionId}`)).status).toBe(404);
    expect((await as('sub-kim', CLINICIAN, `/fhir/Condition/${conditionId}/_history`)).status).toBe(404);
    // The read's AuditEvent names Dr Kim, the purpose and the consent version that authorised it.
    const readObservation = await as('sub-kim', CLINICIAN, `/fhir/Observation?patient=${patientA}`);
    expect(readObservation.body.total).toBeGreaterThan(0);
    const event = await eventually(async () => {
      const e = await lastReadBy('drkim');
      return e && Buffer.from(e.entity.find((x: any) => x.role?.code === '24')?.query ?? '', 'base64').toString().startsWith('Observation?') ? e : undefined;
    });
    expect(event.agent[0].who.reference).toBe('Practitioner/dr-kim');
    expect(event.purposeOfEvent[0].coding[0].code).toBe('TREAT');
    expect(event.entity.filter((x: any) => x.role?.code === '13').map((x: any) => x.what.reference)).toEqual([`Consent/${consentId}/_history/1`]);

    // Another clinician is not named in the consent: still nothing.
    expect((await as('sub-lee', CLINICIAN, `/fhir/${patientA}`)).status).toBe(404);
    // Dr Kim for another purpose (payment) is not covered by a treatment consent.
    expect((await as('sub-kim', CLINICIAN, `/fhir/${patientA}`, { headers: { 'x-purpose-of-use': 'HPAYMT' } })).status).toBe(404);
    // Patient B has no consent at all.
    expect((await as('sub-kim', CLINICIAN, `/fhir/${patientB}`)).status).toBe(404);

    // Revoked: the next read is refused at once (the write tells this process's cache).
    const revoked = await as('sub-patient-a', 'patient/Consent.cu patient/*.rs', `/fhir/Consent/${consentId}`, { method: 'PUT', body: consentForKim(consentId, 'inactive') });
    expect(revoked.status).toBe(200);
    expect((await as('sub-kim', CLINICIAN, `/fhir/${patientA}`)).status).toBe(404);

    // An expired consent does not count either.
    const expired = await as('sub-patient-a', 'patient/Consent.cu patient/*.rs', '/fhir/Consent', { method: 'POST', body: consentForKim(undefined, 'active', '2026-06-30') });
    expect(expired.status).toBe(201);
    expect((await as('sub-kim', CLINICIAN, `/fhir/${patientA}`)).status).toBe(404);
  });

  it('a representative acts for the patient: reads the record and grants consent for them', async () => {
    expect((await as('sub-guardian', 'patient/*.rs', `/fhir/${patientA}`)).status).toBe(200);
    expect((await as('sub-guardian', 'patient/*.rs', `/fhir/${patientB}`)).status).toBe(404);
    const byGuardian = { ...consentForKim(), performer: [{ reference: 'RelatedPerson/guardian-a' }] };
    const written = await as('sub-guardian', 'patient/Consent.cu patient/*.rs', '/fhir/Consent', { method: 'POST', body: byGuardian });
    expect(written.status).toBe(201);
    expect((await as('sub-kim', CLINICIAN, `/fhir/${patientA}`)).status).toBe(200);
    // Inclusions pass the same gate: the mental-health Condition stays out, and nothing says something was left out.
    const withConditions = await as('sub-kim', CLINICIAN, `/fhir/Patient?identifier=CE-A&_revinclude=Condition:patient&_revinclude=Observation:patient`);
    expect(withConditions.status).toBe(200);
    const included = (withConditions.body.entry as any[]).map((e) => e.resource.resourceType);
    expect(included).toContain('Observation');
    expect(included).not.toContain('Condition');
    expect(included).not.toContain('OperationOutcome');
    // A system key is told its scopes withheld nothing, and sees the Condition.
    expect(((await admin('GET', '/fhir/Patient?identifier=CE-A&_revinclude=Condition:patient')).body.entry as any[]).map((e) => e.resource.resourceType)).toContain('Condition');
    // Blobs are named by digest alone, with no study to decide on: people retrieve through WADO-RS instead.
    expect((await as('sub-kim', CLINICIAN, `/blobs/${'a'.repeat(64)}`)).status).toBe(403);
    // A clinician may not write consents.
    expect((await as('sub-kim', 'user/Consent.cu user/*.rs', '/fhir/Consent', { method: 'POST', body: consentForKim() })).status).toBe(403);
  });

  it('break-the-glass: refused without a reason or by a role not allowed; otherwise shown and flagged for review', async () => {
    const headers = { 'x-purpose-of-use': 'ETREAT' };
    const noReason = await as('sub-er', CLINICIAN, `/fhir/${patientB}`, { headers });
    expect([noReason.status, noReason.code]).toEqual([400, 'ANCHORLINE_ERR_BREAK_GLASS_REASON']);
    const notAllowed = await as('sub-lee', CLINICIAN, `/fhir/${patientB}`, { headers: { ...headers, 'x-break-glass-reason': 'unresponsive in the ER' } });
    expect([notAllowed.status, notAllowed.code]).toEqual([403, 'ANCHORLINE_ERR_BREAK_GLASS_FORBIDDEN']);
    expect((await as('sub-er', CLINICIAN, `/fhir/${patientB}`)).status).toBe(404);
    const broken = await as('sub-er', CLINICIAN, `/fhir/${patientB}`, { headers: { ...headers, 'x-break-glass-reason': 'unresponsive in the ER' } });
    expect(broken.status).toBe(200);
    const flagged = await eventually(async () => {
      const found = await admin('GET', '/fhir/AuditEvent?_security=http://terminology.hl7.org/CodeSystem/v3-ActReason|BTG');
      return found.body.total > 0 ? found.body.entry[0].resource : undefined;
    });
    expect(flagged.agent[0].who.reference).toBe('Practitioner/dr-er');
    expect(flagged.outcomeDesc).toContain('unresponsive in the ER');
    expect(flagged.purposeOfEvent.map((p: any) => p.coding[0].code)).toEqual(['ETREAT', 'BTG']);
    // The patient sees that read among the accesses to their record.
    const seenByPatient = await as('sub-patient-a', 'patient/AuditEvent.rs', `/fhir/AuditEvent?patient=${patientA}`);
    expect(seenByPatient.status).toBe(200);
    expect(seenByPatient.body.total).toBeGreaterThan(0);
    expect(seenByPatient.body.entry.every((e: any) => e.resource.entity.some((x: any) => x.role?.code === '1' && x.what.reference === patientA))).toBe(true);
    // ... and nobody else's: patient B's break-the-glass read is not in patient A's list.
    expect(seenByPatient.body.entry.some((e: any) => e.resource.id === flagged.id)).toBe(false);
  });

  it('WADO-RS: a study is retrieved by a clinician only under the patient\'s consent', async () => {
    const dicom = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom', 'ct-1.dcm'));
    const boundary = 'consent-wado-boundary';
    const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), dicom, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const stored = await fetch(`${t.httpUrl}/dicomweb/studies`, { method: 'POST', headers: { ...authHeaders(), 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' }, body });
    expect(stored.status).toBe(200);
    const study = '/dicomweb/studies/2.25.1000000001';
    const patient = await eventually(async () => {
      const found = await admin('GET', '/fhir/Patient?identifier=SEOUL0001');
      const wado = await fetch(`${t.httpUrl}${study}`, { headers: authHeaders() });
      await wado.arrayBuffer();
      return found.body.total === 1 && wado.status === 200 ? `Patient/${found.body.entry[0].resource.id}` : undefined;
    });
    const retrieve = async (): Promise<number> => {
      const response = await fetch(`${t.httpUrl}${study}`, { headers: { authorization: `Bearer ${await token('sub-kim', CLINICIAN)}` } });
      await response.arrayBuffer();
      return response.status;
    };
    expect(await retrieve()).toBe(404);
    const consent = { ...consentForKim(), patient: { reference: patient }, performer: [{ reference: patient }] };
    expect((await admin('POST', '/fhir/Consent', consent)).status).toBe(201);
    expect(await retrieve()).toBe(200);
  });

  it('opt-out: with no consent a clinician reads, a deny consent withholds', async () => {
    const optOut = await startTestEngine({ overrides: { auth: { externalIdp: idp.externalIdp }, consent: { default: 'opt-out' } } });
    try {
      const response = await fetch(`${optOut.httpUrl}/ingest/hl7v2`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'x-application/hl7-v2+er7' }, body: ADT_B });
      expect(response.status).toBeLessThan(300);
      const patient = await eventually(async () => {
        const found = (await fetch(`${optOut.httpUrl}/fhir/Patient?identifier=CE-B`, { headers: authHeaders() }).then((r) => r.json())) as any;
        return found.total === 1 ? `Patient/${found.entry[0].resource.id}` : undefined;
      });
      await fetch(`${optOut.httpUrl}/admin/users`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ username: 'drlee', role: 'practitioner', fhirUser: 'Practitioner/dr-lee', displayName: 'Dr Lee', externalSubject: 'sub-lee' }) });
      const read = async (): Promise<number> => (await fetch(`${optOut.httpUrl}/fhir/${patient}`, { headers: { authorization: `Bearer ${await token('sub-lee', CLINICIAN)}` } })).status;
      expect(await read()).toBe(200);
      const deny = { ...consentForKim(), patient: { reference: patient }, performer: [{ reference: patient }], provision: { type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: 'Practitioner/dr-lee' } }] } };
      const written = await fetch(`${optOut.httpUrl}/fhir/Consent`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/fhir+json' }, body: JSON.stringify(deny) });
      expect(written.status).toBe(201);
      expect(await read()).toBe(404);
    } finally {
      await optOut.destroy();
    }
  }, 120_000);
});
