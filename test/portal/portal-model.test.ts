/**
 * What the patient portal computes without the engine: the plain lines it shows for resources and where they came
 * from, an access row read from a read AuditEvent, the Consent its grant form writes (checked by the engine's own
 * consent validation and decided by its consent decision, so the portal writes what the engine enforces), and PKCE.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../anchor/json.ts';
import { decide } from '../../consent/decide.ts';
import { resourceFacts } from '../../consent/labels.ts';
import type { ConsentResource, Requester } from '../../consent/types.ts';
import { validateConsent } from '../../consent/validate.ts';
import { consentFor, grantProblem, revoked, summariseConsent, type ConsentGrant } from '../../web/portal/consent.ts';
import { accessRow, facilityOf, groupByType, humanName, resourceLine, whatOf, type FhirResource } from '../../web/portal/describe.ts';
import { randomToken, s256Challenge } from '../../web/portal/pkce.ts';

const PATIENT = 'Patient/p-snuh';

describe('resource lines', () => {
  it('names a Korean patient family name first, with the facility that assigned the record number', () => {
    const patient: FhirResource = {
      resourceType: 'Patient',
      id: 'p-snuh',
      name: [{ family: '김', given: ['민지'] }],
      birthDate: '1980-01-01',
      gender: 'female',
      identifier: [{ system: 'urn:anchorline:authority:SNUH', value: 'M100', assigner: { display: 'SNUH', reference: 'Organization/o1' } }],
    };
    expect(humanName(patient.name)).toBe('김민지');
    expect(resourceLine(patient)).toEqual({ type: 'Patient', id: 'p-snuh', what: '김민지, born 1980-01-01, female', when: undefined, facility: 'SNUH' });
    expect(humanName([{ family: 'Doe', given: ['Jane', 'Q'] }])).toBe('Jane Q Doe');
  });

  it('reads a facility from the authority in an identifier system, the managing organisation or meta.source', () => {
    expect(facilityOf({ resourceType: 'Encounter', identifier: [{ system: 'urn:anchorline:authority:AMC', value: 'V1' }] })).toBe('AMC');
    expect(facilityOf({ resourceType: 'Patient', managingOrganization: { display: 'Asan Medical Center' } })).toBe('Asan Medical Center');
    expect(facilityOf({ resourceType: 'Observation', meta: { source: 'urn:source:snuh-lab' } })).toBe('urn:source:snuh-lab');
    expect(facilityOf({ resourceType: 'Observation' })).toBeUndefined();
  });

  it('shows an observation with its value as sent (5.40 stays 5.40), its flag and its date', () => {
    const observation = parseJson(
      '{"resourceType":"Observation","id":"o1","code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}]},"valueQuantity":{"value":5.40,"unit":"mmol/L"},' +
        '"interpretation":[{"coding":[{"code":"H","display":"High"}]}],"effectiveDateTime":"2026-11-21T09:30:00+09:00"}',
    ) as FhirResource;
    expect(resourceLine(observation)).toMatchObject({ what: 'Potassium: 5.40 mmol/L (High)', when: '2026-11-21 09:30' });
  });

  it('groups by kind in reading order, newest first within a kind', () => {
    const groups = groupByType([
      { resourceType: 'Observation', id: 'a', code: { text: 'old' }, effectiveDateTime: '2020-01-01' },
      { resourceType: 'Provenance', id: 'p', activity: { text: 'HL7 v2 ADT^A01' } },
      { resourceType: 'Observation', id: 'b', code: { text: 'new' }, effectiveDateTime: '2026-01-01' },
      { resourceType: 'Patient', id: 'p-snuh', name: [{ family: 'Doe', given: ['Jane'] }] },
    ]);
    expect(groups.map((g) => g.type)).toEqual(['Patient', 'Observation', 'Provenance']);
    expect(groups[1]!.lines.map((l) => l.id)).toEqual(['b', 'a']);
    expect(groups[0]!.title).toBe('About you');
  });
});

describe('access rows', () => {
  const objectRole = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/object-role', code });
  it('reads who, when, what, why and the consent that authorised a read', () => {
    const row = accessRow({
      resourceType: 'AuditEvent',
      id: 'ae1',
      meta: { versionId: '1' },
      action: 'R',
      recorded: '2026-12-06T17:32:37.576Z',
      agent: [{ who: { reference: 'Practitioner/dr-kim', display: '김서연' }, requestor: true }, { who: { display: 'anchorline' }, requestor: false }],
      purposeOfEvent: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] }],
      entity: [
        { what: { reference: PATIENT }, role: objectRole('1') },
        { what: { reference: `${PATIENT}/_history/1` }, role: objectRole('4') },
        { what: { reference: 'Consent/c1/_history/1' }, role: objectRole('13') },
      ],
    });
    expect(row).toEqual({
      id: 'ae1', versionId: '1', who: '김서연', whoReference: 'Practitioner/dr-kim', action: 'R', when: '2026-12-06T17:32:37.576Z', what: [`${PATIENT}/_history/1`],
      purposes: ['TREAT'], consents: ['Consent/c1/_history/1'], breakGlass: false, outcomeDesc: undefined,
    });
  });

  it('marks break-the-glass, with the reason given', () => {
    const row = accessRow({
      resourceType: 'AuditEvent',
      id: 'ae2',
      meta: { versionId: '1', security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' }] },
      agent: [{ who: { reference: 'Practitioner/er-doc' }, requestor: true }],
      purposeOfEvent: [{ coding: [{ code: 'ETREAT' }] }, { coding: [{ code: 'BTG' }] }],
      outcomeDesc: 'break-the-glass: unconscious in the emergency room',
      entity: [{ what: { identifier: { system: 'urn:anchorline:consent-policy', value: 'default' } }, role: objectRole('13') }],
    });
    expect(row).toMatchObject({ who: 'Practitioner/er-doc', breakGlass: true, purposes: ['ETREAT', 'BTG'], consents: ['default policy'], outcomeDesc: 'break-the-glass: unconscious in the emergency room' });
  });
});

describe('the Consent a grant writes', () => {
  const grant: ConsentGrant = { patient: PATIENT, actor: 'Practitioner/dr-kim', purpose: 'TREAT', exclude: ['mental-health', 'hiv'], from: '2026-01-01', to: '2030-12-31' };
  const consent = { ...consentFor(grant, new Date('2026-06-01T00:00:00Z')), id: 'c1', meta: { versionId: '1' } };
  const requester = (fhirUser: string, purpose = 'TREAT'): Requester => ({ fhirUser, memberOf: [], roles: [], purpose });
  const facts = (resource: Record<string, unknown>) => resourceFacts({ id: 'x', subject: { reference: PATIENT }, ...resource });
  const now = new Date('2026-12-06T00:00:00Z');

  it('is a valid patient-privacy Consent to the engine', () => {
    expect(validateConsent(consent)).toEqual([]);
    expect(consent).toMatchObject({
      status: 'active',
      scope: { coding: [{ code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: PATIENT },
      performer: [{ reference: PATIENT }],
      provision: { type: 'permit', period: { start: '2026-01-01', end: '2030-12-31' }, actor: [{ reference: { reference: 'Practitioner/dr-kim' } }], purpose: [{ code: 'TREAT' }] },
    });
  });

  it('lets the practitioner read for treatment, keeps out what was excluded, and no one else is let in', () => {
    const consents = [consent as unknown as ConsentResource];
    const encounter = facts({ resourceType: 'Encounter', class: { code: 'IMP' } });
    const depression = facts({ resourceType: 'Condition', code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'F32.1' }] } });
    const hiv = facts({ resourceType: 'Condition', code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'B20' }] } });
    const genetic = facts({ resourceType: 'Condition', code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'Q90.0' }] } });
    expect(decide(consents, requester('Practitioner/dr-kim'), encounter, 'opt-in', now)).toMatchObject({ permit: true, basis: 'consent', consent: 'Consent/c1/_history/1' });
    expect(decide(consents, requester('Practitioner/dr-kim'), depression, 'opt-in', now).permit).toBe(false);
    expect(decide(consents, requester('Practitioner/dr-kim'), hiv, 'opt-in', now).permit).toBe(false);
    // Genetics was not excluded.
    expect(decide(consents, requester('Practitioner/dr-kim'), genetic, 'opt-in', now).permit).toBe(true);
    expect(decide(consents, requester('Practitioner/dr-lee'), encounter, 'opt-in', now).permit).toBe(false);
    expect(decide(consents, requester('Practitioner/dr-kim', 'HRESCH'), encounter, 'opt-in', now).permit).toBe(false);
    // Revoked: nothing is let in any more.
    expect(decide([revoked(consent) as unknown as ConsentResource], requester('Practitioner/dr-kim'), encounter, 'opt-in', now).permit).toBe(false);
  });

  it('is summarised as the patient wrote it', () => {
    expect(summariseConsent(consent)).toEqual({
      id: 'c1', status: 'active', kind: 'permit', actors: ['Practitioner/dr-kim'], purposes: ['TREAT'], period: { start: '2026-01-01', end: '2030-12-31' }, excluded: ['Mental health', 'HIV'], dateTime: '2026-06-01T00:00:00.000Z',
    });
    expect(summariseConsent(revoked(consent)).status).toBe('inactive');
  });

  it('refuses a grant it cannot write, saying why', () => {
    expect(grantProblem(grant)).toBeUndefined();
    expect(grantProblem({ ...grant, actor: 'dr-kim' })).toContain('Practitioner/<id>');
    expect(grantProblem({ ...grant, from: '2027-01-01', to: '2026-01-01' })).toContain('before the start');
    expect(grantProblem({ ...grant, purpose: 'HMARKT' })).toContain('what the access is for');
    const open = consentFor({ ...grant, exclude: [], from: '', to: '' }, new Date());
    expect((open.provision as Record<string, unknown>).period).toBeUndefined();
    expect((open.provision as Record<string, unknown>).provision).toBeUndefined();
    expect(validateConsent(open)).toEqual([]);
  });
});

describe('PKCE', () => {
  it('makes an S256 challenge as RFC 7636 defines it, from a verifier of the allowed length and alphabet', async () => {
    const verifier = randomToken(32);
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken(32)).not.toBe(verifier);
    expect(await s256Challenge(verifier)).toBe(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  });
});

describe('what a visit says', () => {
  it('reads a place kept as the sender\'s components (point of care, room, bed) as words, not HL7 separators', () => {
    const visit: FhirResource = { resourceType: 'Encounter', status: 'in-progress', location: [{ location: { display: 'W1^101^A' } }], participant: [{ individual: { display: 'Minsu Kim' } }] };
    expect(whatOf(visit)).toBe('at W1 · 101 · A, with Minsu Kim, in-progress');
  });
});

