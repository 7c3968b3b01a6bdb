/**
 * POST /fhir/Consent and PUT /fhir/Consent/{id} through a real engine: validation as a coded OperationOutcome, who may
 * write, If-Match, revocation, the stored version with its request body, leaf and AuditEvent, the consent cache told
 * by NOTIFY, and a ledger audit that stays clean after consent writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, type Person, type Principal } from '../../api/access.ts';
import { authorizeConsentWrite } from '../../api/fhir-write.ts';
import { auditLedger, ConsentCache, consents } from '../../store/index.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';

let t: TestEngine;

const consentBody = (patient: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  resourceType: 'Consent',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: patient },
  dateTime: '2026-06-01T10:00:00+09:00',
  performer: [{ reference: patient }],
  policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
  provision: {
    type: 'permit',
    period: { start: '2026-06-01', end: '2027-05-31' },
    actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: 'Organization/snuh' } }],
    provision: [{ type: 'deny', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] }],
  },
  ...extra,
});

async function send(method: 'POST' | 'PUT', url: string, body: unknown, headers: Record<string, string> = {}, key?: string): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${t.httpUrl}${url}`, { method, headers: { ...authHeaders(key), 'content-type': 'application/fhir+json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

async function apiKey(scopes: string[]): Promise<string> {
  const response = await fetch(`${t.httpUrl}/admin/api-keys`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify({ name: `consent ${scopes.join(' ')}`, scopes }) });
  return ((await response.json()) as { key: string }).key;
}

beforeAll(async () => {
  t = await startTestEngine();
  // The organisation the consents name is known to the engine through a clinician's account there.
  const account = { username: 'dr-snuh', role: 'practitioner', fhirUser: 'Practitioner/dr-snuh', displayName: 'Dr SNUH', organization: 'Organization/snuh', password: 'a-long-password-1' };
  const created = await fetch(`${t.httpUrl}/admin/users`, { method: 'POST', headers: { ...authHeaders(), 'content-type': 'application/json' }, body: JSON.stringify(account) });
  expect(created.status).toBe(201);
});
afterAll(async () => {
  await t?.destroy();
});

describe('Consent writes', () => {
  let id: string;

  it('creates a Consent: 201, the stored version, its request body kept and its AuditEvent written', async () => {
    const created = await send('POST', '/fhir/Consent', { ...consentBody('Patient/cw-1'), id: 'ignored' });
    expect(created.status).toBe(201);
    id = created.body.id;
    expect(id).not.toBe('ignored');
    expect(created.headers.get('etag')).toBe('W/"1"');
    expect(created.headers.get('location')).toBe(`/fhir/Consent/${id}/_history/1`);
    expect(created.body).toMatchObject({ resourceType: 'Consent', meta: { versionId: '1' }, status: 'active' });
    const inbox = await t.pool.query(`SELECT protocol, state, disposition FROM inbox_message WHERE control_id = $1`, [`Consent/${id}/_history/1`]);
    expect(inbox.rows).toEqual([{ protocol: 'fhir-rest', state: 'done', disposition: 'accepted' }]);
    const events = await t.pool.query<{ content: any }>(`SELECT content FROM fhir_resource WHERE resource_type = 'AuditEvent' AND content @> $1::jsonb`, [JSON.stringify({ entity: [{ what: { reference: `Consent/${id}/_history/1` } }] })]);
    expect(events.rows).toHaveLength(1);
    expect(events.rows[0]!.content).toMatchObject({ type: { code: 'rest' }, subtype: [{ code: 'create' }], action: 'C', agent: [{ requestor: true, who: { identifier: { system: 'urn:anchorline:api-key' } } }, { requestor: false }] });
    expect(await consents.activeConsents(t.pool, 'Patient/cw-1')).toHaveLength(1);
  });

  it('refuses a Consent naming a clinician or organisation the engine does not know', async () => {
    const stranger = consentBody('Patient/cw-9', {
      provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: 'Practitioner/typo-kim' } }] },
    });
    const refused = await send('POST', '/fhir/Consent', stranger);
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain('CONSENT_ACTOR_UNKNOWN');
    expect(await consents.activeConsents(t.pool, 'Patient/cw-9')).toHaveLength(0);
  });

  it('refuses an invalid Consent with one coded issue per problem, and stores nothing', async () => {
    const bad = consentBody('Patient/cw-2', {
      provision: { type: 'permit', period: { start: '2027-01-01', end: '2026-01-01' }, purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'SHOPPING' }] },
    });
    const refused = await send('POST', '/fhir/Consent', bad);
    expect(refused.status).toBe(422);
    expect(refused.headers.get('x-anchorline-error')).toBe('ANCHORLINE_ERR_CONSENT_INVALID');
    const codes = refused.body.issue.flatMap((issue: any) => issue.details.coding.filter((c: any) => c.system === 'urn:anchorline:consent-issue').map((c: any) => c.code));
    expect(codes).toEqual(expect.arrayContaining(['CONSENT_PERIOD_INVALID', 'CONSENT_PURPOSE_UNKNOWN']));
    expect((await send('POST', '/fhir/Consent', { resourceType: 'Patient' })).status).toBe(422);
    expect((await send('POST', '/fhir/Consent', '{"resourceType":"Consent","resourceType":"Consent"}')).status).toBe(400);
    expect(await consents.activeConsents(t.pool, 'Patient/cw-2')).toEqual([]);
  });

  it('updates with If-Match, refuses a stale If-Match with 412, and revokes with status inactive', async () => {
    const stale = await send('PUT', `/fhir/Consent/${id}`, { ...consentBody('Patient/cw-1', { status: 'inactive' }), id }, { 'if-match': 'W/"7"' });
    expect(stale.status).toBe(412);
    const revoked = await send('PUT', `/fhir/Consent/${id}`, { ...consentBody('Patient/cw-1', { status: 'inactive' }), id }, { 'if-match': 'W/"1"' });
    expect(revoked.status).toBe(200);
    expect(revoked.headers.get('etag')).toBe('W/"2"');
    expect(await consents.activeConsents(t.pool, 'Patient/cw-1')).toEqual([]);
    const moved = await send('PUT', `/fhir/Consent/${id}`, { ...consentBody('Patient/cw-9'), id });
    expect(moved.status).toBe(409);
  });

  it('lets a system credential with system/Consent.cu write, and refuses one that can only read', async () => {
    const writer = await apiKey(['system/Consent.cu']);
    const written = await send("PUT", "/fhir/Consent/cw-sys-1", { ...consentBody("Patient/cw-3"), id: "cw-sys-1" }, {}, writer);
    expect(written.status, JSON.stringify(written.body)).toBe(201);
    const reader = await apiKey(['system/*.rs']);
    expect((await send('POST', '/fhir/Consent', consentBody('Patient/cw-3'), {}, reader)).status).toBe(403);
  });

  it('drops a patient\'s cached consents when a write commits (NOTIFY), whoever writes', async () => {
    const cache = new ConsentCache({ pool: t.pool });
    try {
      await cache.start();
      expect(await cache.consentsOf('Patient/cw-4')).toEqual([]);
      expect(await cache.consentsOf('Patient/cw-4')).toEqual([]);
      expect(cache.stats).toEqual({ hits: 1, loads: 1 });
      expect((await send('POST', '/fhir/Consent', consentBody('Patient/cw-4'))).status).toBe(201);
      await eventually(async () => ((await cache.consentsOf('Patient/cw-4')).length === 1 ? true : undefined), 5_000, 'the new consent');
    } finally {
      await cache.close();
    }
  });

  it('leaves the ledger audit clean after consent writes', async () => {
    const report = await auditLedger(t.pool);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('who may write a Consent', () => {
  const person = (role: Person['role'], fhirUser: string, patients: string[]): Principal => ({
    kind: 'user', id: `u-${role}`, name: role, person: { userId: `u-${role}`, role, fhirUser, patients, memberOf: [], roles: [] },
  });
  const consent = (patient: string, performer?: string): Record<string, unknown> => ({ resourceType: 'Consent', patient: { reference: patient }, ...(performer ? { performer: [{ reference: performer }] } : {}) });
  const code = (fn: () => void): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };

  it('a patient for their own records only', () => {
    const access = new Access(person('patient', 'Patient/me', ['Patient/me', 'Patient/me-at-amc']), ['patient/Consent.cu']);
    expect(code(() => authorizeConsentWrite(access, consent('Patient/me-at-amc'), 'c'))).toBeUndefined();
    expect(code(() => authorizeConsentWrite(access, consent('Patient/other'), 'c'))).toBe('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN');
  });

  it('a representative for the patients they represent, named as performer', () => {
    const access = new Access(person('representative', 'RelatedPerson/mother', ['Patient/child']), ['patient/Consent.cu']);
    expect(code(() => authorizeConsentWrite(access, consent('Patient/child', 'RelatedPerson/mother'), 'u'))).toBeUndefined();
    expect(code(() => authorizeConsentWrite(access, consent('Patient/child', 'Patient/child'), 'u'))).toBe('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN');
  });

  it('registration staff for any patient; practitioners never; nobody without the scope', () => {
    expect(code(() => authorizeConsentWrite(new Access(person('registration', 'Practitioner/desk', []), ['user/Consent.cu']), consent('Patient/any'), 'c'))).toBeUndefined();
    expect(code(() => authorizeConsentWrite(new Access(person('practitioner', 'Practitioner/dr', []), ['user/Consent.cu']), consent('Patient/any'), 'c'))).toBe('ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN');
    expect(code(() => authorizeConsentWrite(new Access(person('patient', 'Patient/me', ['Patient/me']), ['patient/Consent.rs']), consent('Patient/me'), 'c'))).toBe('ANCHORLINE_ERR_FORBIDDEN');
  });
});
