/**
 * The consent gate on its own (api/consent-gate.ts): which of the resources a read found a person may see, and what
 * the read's AuditEvent records about why. The consents are real FHIR R4 Consent resources decided by
 * consent/decide.ts; only their store is replaced by a map (the store's cache is tested with the store).
 */
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { Access, type Person } from '../../api/access.ts';
import { ConsentGate, patientsAbout, type ConsentGateOptions } from '../../api/consent-gate.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import type { StoredResource } from '../../store/index.ts';
import type { ConsentResource } from '../../consent/types.ts';

const NOW = new Date();
const stored = (content: Record<string, unknown>, versionId = 1): StoredResource => ({
  resourceType: content.resourceType as string,
  id: content.id as string,
  versionId,
  lastUpdated: NOW,
  content: { ...content, meta: { versionId: String(versionId), ...(content.meta as object | undefined) } },
  deleted: false,
});

const patientA = stored({ resourceType: 'Patient', id: 'pa' });
const patientB = stored({ resourceType: 'Patient', id: 'pb' });
const glucoseA = stored({
  resourceType: 'Observation', id: 'oa', status: 'final', subject: { reference: 'Patient/pa' },
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
});
const depressionA = stored({
  resourceType: 'Condition', id: 'ca', subject: { reference: 'Patient/pa' },
  code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'F32.9' }] },
});
const practitioner = stored({ resourceType: 'Practitioner', id: 'dr-kim' });

const person = (overrides: Partial<Person>): Person => ({ userId: 'u1', role: 'practitioner', fhirUser: 'Practitioner/dr-kim', patients: [], memberOf: [], roles: [], ...overrides });
const userAccess = (p: Person, scopes = ['user/*.rs'], launch?: string): Access => new Access({ kind: 'user', id: p.userId, name: 'someone', person: p }, scopes, launch);
const request = (headers: Record<string, string> = {}): FastifyRequest => ({ headers }) as unknown as FastifyRequest;

/** A patient-privacy Consent of Patient/pa: permit `actor` everything but mental health (v3 ActCode PSY label). */
function consentFor(actor: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    id: 'c1',
    meta: { versionId: '3' },
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: 'Patient/pa' },
    provision: {
      type: 'permit',
      period: { start: '2020-01-01' },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: actor } }],
      provision: [{ type: 'deny', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'PSY' }] }],
    },
    ...overrides,
  };
}

function gateWith(consents: Record<string, Array<Record<string, unknown>>>, options: Partial<ConsentGateOptions> = {}): ConsentGate {
  return new ConsentGate({ consentsOf: async (patient) => (consents[patient] ?? []) as unknown as ConsentResource[] }, { enabled: true, defaultPolicy: 'opt-in', breakGlassRoles: ['emergency'], ...options });
}

const ids = (list: StoredResource[]): string[] => list.map((r) => `${r.resourceType}/${r.id}`);

describe('the consent gate', () => {
  it('lets system callers through untouched and records nothing about consent', async () => {
    const gate = gateWith({});
    const system = new Access({ kind: 'api-key', id: '1', name: 'k' }, ['system/*.rs']);
    expect(gate.context(request(), system)).toBeUndefined();
    const result = await gate.filter(undefined, [patientA, glucoseA]);
    expect(ids(result.allowed)).toEqual(['Patient/pa', 'Observation/oa']);
    expect(result.authorization).toBeUndefined();
  });

  it('opt-in: a clinician sees nothing of a patient without consent; opt-out: everything; data outside any compartment passes', async () => {
    const access = userAccess(person({}));
    const optIn = gateWith({});
    const denied = await optIn.filter(optIn.context(request(), access), [patientA, glucoseA, practitioner]);
    expect(ids(denied.allowed)).toEqual(['Practitioner/dr-kim']);
    const optOut = gateWith({}, { defaultPolicy: 'opt-out' });
    const permitted = await optOut.filter(optOut.context(request(), access), [patientA, glucoseA]);
    expect(ids(permitted.allowed)).toEqual(['Patient/pa', 'Observation/oa']);
    expect(permitted.authorization).toMatchObject({ byDefault: true, consents: [], ownRecord: false });
  });

  it('a consent permits the clinician it names, names its version in the audit, and withholds the mental-health label inside it', async () => {
    const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim')] });
    const context = gate.context(request(), userAccess(person({})));
    const result = await gate.filter(context, [patientA, glucoseA, depressionA, patientB]);
    expect(ids(result.allowed)).toEqual(['Patient/pa', 'Observation/oa']);
    expect(result.authorization?.consents).toEqual(['Consent/c1/_history/3']);
    // Another clinician is not named: opt-in default denies.
    const other = gate.context(request(), userAccess(person({ fhirUser: 'Practitioner/dr-lee', userId: 'u2' })));
    expect((await gate.filter(other, [patientA, glucoseA])).allowed).toEqual([]);
  });

  it('names the clinician by organisation too', async () => {
    const gate = gateWith({ 'Patient/pa': [consentFor('Organization/snuh')] });
    const member = gate.context(request(), userAccess(person({ organization: 'Organization/snuh' })));
    expect(ids((await gate.filter(member, [glucoseA])).allowed)).toEqual(['Observation/oa']);
  });

  it('ignores a revoked or expired consent', async () => {
    for (const overrides of [{ status: 'inactive' }, { provision: { ...(consentFor('Practitioner/dr-kim').provision as object), period: { start: '2020-01-01', end: '2021-01-01' } } }]) {
      const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim', overrides)] });
      expect((await gate.filter(gate.context(request(), userAccess(person({}))), [glucoseA])).allowed, JSON.stringify(overrides)).toEqual([]);
    }
  });

  it('a patient and a representative see the patient record without consent; the patient scope stops at their patients', async () => {
    const gate = gateWith({});
    const patient = userAccess(person({ role: 'patient', fhirUser: 'Patient/pa', patients: ['Patient/pa'] }), ['patient/*.rs']);
    const own = await gate.filter(gate.context(request(), patient), [patientA, glucoseA, depressionA, patientB]);
    expect(ids(own.allowed)).toEqual(['Patient/pa', 'Observation/oa', 'Condition/ca']);
    expect(own.authorization).toMatchObject({ ownRecord: true, byDefault: false });
    const representative = userAccess(person({ role: 'representative', fhirUser: 'RelatedPerson/rp', patients: ['Patient/pb'] }), ['patient/*.rs']);
    expect(ids((await gate.filter(gate.context(request(), representative), [patientA, patientB])).allowed)).toEqual(['Patient/pb']);
  });

  it('a practitioner launched with one patient reaches that patient only, and consent still decides', async () => {
    const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim')] }, { defaultPolicy: 'opt-out' });
    const access = userAccess(person({}), ['patient/*.rs'], 'Patient/pa');
    const result = await gate.filter(gate.context(request(), access), [patientA, depressionA, patientB]);
    expect(ids(result.allowed)).toEqual(['Patient/pa']);
  });

  it('the audit trail: a patient reads the events about their own record, a clinician none', async () => {
    const event = stored({ resourceType: 'AuditEvent', id: 'ae1', entity: [{ what: { reference: 'Patient/pa' }, role: { code: '1' } }] });
    expect(patientsAbout(event.content)).toEqual(['Patient/pa']);
    const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim')] }, { defaultPolicy: 'opt-out' });
    const patient = userAccess(person({ role: 'patient', fhirUser: 'Patient/pa', patients: ['Patient/pa'] }), ['patient/AuditEvent.rs']);
    expect((await gate.filter(gate.context(request(), patient), [event])).allowed).toHaveLength(1);
    const clinician = userAccess(person({}), ['user/AuditEvent.rs']);
    expect((await gate.filter(gate.context(request(), clinician), [event])).allowed).toHaveLength(0);
  });

  it('a Group is about every patient it lists', async () => {
    const cohort = stored({ resourceType: 'Group', id: 'g1', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/pa' } }, { entity: { reference: 'Patient/pb' } }] });
    expect(patientsAbout(cohort.content)).toEqual(['Patient/pa', 'Patient/pb']);
    const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim')] });
    expect((await gate.filter(gate.context(request(), userAccess(person({}))), [cohort])).allowed).toEqual([]);
    const optOut = gateWith({}, { defaultPolicy: 'opt-out' });
    expect((await optOut.filter(optOut.context(request(), userAccess(person({}))), [cohort])).allowed).toHaveLength(1);
  });

  it('a document is disclosed whole or not at all', async () => {
    const document = stored({ resourceType: 'Bundle', id: 'doc', type: 'document', entry: [{ resource: glucoseA.content }, { resource: depressionA.content }] });
    const gate = gateWith({ 'Patient/pa': [consentFor('Practitioner/dr-kim')] });
    const context = gate.context(request(), userAccess(person({})));
    expect((await gate.filter(context, [document])).allowed).toEqual([]);
    const labsOnly = stored({ resourceType: 'Bundle', id: 'doc2', type: 'document', entry: [{ resource: glucoseA.content }] });
    expect((await gate.filter(context, [labsOnly])).allowed).toHaveLength(1);
  });

  it('break-the-glass: needs a reason and an allowed role, then overrides and is flagged', async () => {
    const gate = gateWith({});
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        return isAnchorlineError(error) ? error.code : 'other';
      }
      return undefined;
    };
    const emergency = userAccess(person({ roles: ['emergency'] }));
    expect(code(() => gate.context(request({ 'x-purpose-of-use': 'ETREAT' }), emergency))).toBe('ANCHORLINE_ERR_BREAK_GLASS_REASON');
    expect(code(() => gate.context(request({ 'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': 'unconscious in ER' }), userAccess(person({}))))).toBe('ANCHORLINE_ERR_BREAK_GLASS_FORBIDDEN');
    expect(code(() => gate.context(request({ 'x-purpose-of-use': 'WHATEVER' }), emergency))).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    expect(code(() => gate.context(request({ 'x-break-glass-reason': 'no purpose' }), emergency))).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
    const context = gate.context(request({ 'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': 'unconscious in ER' }), emergency);
    const result = await gate.filter(context, [patientA, glucoseA, depressionA]);
    expect(result.allowed).toHaveLength(3);
    expect(result.authorization?.breakGlass).toEqual({ reason: 'unconscious in ER' });
    // Reading what was permitted anyway does not flag the read.
    const optOut = gateWith({}, { defaultPolicy: 'opt-out' });
    const plain = await optOut.filter(optOut.context(request({ 'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': 'r' }), emergency), [patientA]);
    expect(plain.authorization?.breakGlass).toBeUndefined();
  });
});
