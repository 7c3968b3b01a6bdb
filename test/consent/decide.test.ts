/**
 * consent/decide.ts on consents shaped like the FHIR R4 examples (consent-example-notThis, consent-example-Out,
 * consent-example-notOrg): who a consent names, what it excepts, for how long and what for, and what applies when
 * none does.
 */
import { describe, expect, it } from 'vitest';
import { decide, resourceFacts, type ConsentResource, type Requester } from '../../consent/index.ts';

const NOW = new Date('2026-06-15T03:00:00Z');
const SCOPE = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] };
const CATEGORY = [{ coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] }];
const PRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] };
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

function consent(id: string, provision: ConsentResource['provision'], extra: Partial<ConsentResource> = {}): ConsentResource {
  return {
    resourceType: 'Consent',
    id,
    meta: { versionId: '2' },
    status: 'active',
    scope: SCOPE,
    category: CATEGORY,
    patient: { reference: 'Patient/p1' },
    dateTime: '2026-01-10',
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision,
    ...extra,
  };
}

const drKim: Requester = { fhirUser: 'Practitioner/dr-kim', organization: 'Organization/snuh', memberOf: ['PractitionerRole/kim-cardio'], roles: [], purpose: 'TREAT' };
const drLee: Requester = { fhirUser: 'Practitioner/dr-lee', organization: 'Organization/amc', memberOf: [], roles: [], purpose: 'TREAT' };

const labResult = resourceFacts({
  resourceType: 'Observation', id: 'hba1c', status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] }, subject: { reference: 'Patient/p1' }, effectiveDateTime: '2026-03-02T09:00:00+09:00',
});
const depression = resourceFacts({
  resourceType: 'Condition', id: 'dep', code: { coding: [{ system: 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8', code: 'F32.1' }] },
  subject: { reference: 'Patient/p1' }, recordedDate: '2025-11-20',
});
const imaging = resourceFacts({ resourceType: 'ImagingStudy', id: 'ct', status: 'available', subject: { reference: 'Patient/p1' }, started: '2026-02-01T10:00:00+09:00' });

/** "Permit Dr Kim everything except psychiatric information" (consent-example-notThis with a label). */
const permitKimButPsy = consent('kim-not-psy', {
  type: 'permit',
  period: { start: '2026-01-10', end: '2027-01-09' },
  actor: [{ role: PRCP, reference: { reference: 'Practitioner/dr-kim' } }],
  action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'access' }] }],
  provision: [{ type: 'deny', securityLabel: [{ system: ACT_CODE, code: 'PSY' }] }],
});

describe('decide', () => {
  it('permits the clinician a consent names and names the consent version that decided', () => {
    expect(decide([permitKimButPsy], drKim, labResult, 'opt-in', NOW)).toEqual({ permit: true, basis: 'consent', consent: 'Consent/kim-not-psy/_history/2', provision: 'Consent.provision' });
  });

  it('leaves a clinician the consent does not name to the default', () => {
    expect(decide([permitKimButPsy], drLee, labResult, 'opt-in', NOW)).toEqual({ permit: false, basis: 'default' });
    expect(decide([permitKimButPsy], drLee, labResult, 'opt-out', NOW)).toEqual({ permit: true, basis: 'default' });
  });

  it('denies the sensitive exception inside a broader permit, by the nested provision', () => {
    expect(decide([permitKimButPsy], drKim, depression, 'opt-out', NOW)).toMatchObject({ permit: false, basis: 'consent', consent: 'Consent/kim-not-psy/_history/2', provision: 'Consent.provision.provision[0]' });
  });

  it('ignores a revoked (inactive) consent and one whose period has ended or not begun', () => {
    expect(decide([{ ...permitKimButPsy, status: 'inactive' }], drKim, labResult, 'opt-in', NOW).basis).toBe('default');
    const expired = consent('expired', { ...permitKimButPsy.provision, period: { start: '2024-01-01', end: '2025-12-31' } });
    expect(decide([expired], drKim, labResult, 'opt-in', NOW)).toEqual({ permit: false, basis: 'default' });
    // A date end covers its whole day.
    expect(decide([expired], drKim, labResult, 'opt-in', new Date('2025-12-31T23:59:00Z')).permit).toBe(true);
    const future = consent('future', { ...permitKimButPsy.provision, period: { start: '2026-07-01' } });
    expect(decide([future], drKim, labResult, 'opt-in', NOW).basis).toBe('default');
  });

  it('ignores consents of other scopes: an advance directive decides no access', () => {
    const adr = { ...permitKimButPsy, scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'adr' }] } };
    expect(decide([adr], drKim, labResult, 'opt-in', NOW).basis).toBe('default');
  });

  it('matches purposes through the PurposeOfUse hierarchy: TREAT covers ETREAT, not payment', () => {
    const forTreatment = consent('treat-only', { type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] });
    expect(decide([forTreatment], { ...drLee, purpose: 'ETREAT' }, labResult, 'opt-in', NOW).permit).toBe(true);
    expect(decide([forTreatment], { ...drLee, purpose: 'HPAYMT' }, labResult, 'opt-in', NOW)).toEqual({ permit: false, basis: 'default' });
    const emergencyOnly = consent('etreat-only', { type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' }] });
    expect(decide([emergencyOnly], drLee, labResult, 'opt-in', NOW).basis).toBe('default');
  });

  it('limits a permit to the resource types its class names', () => {
    const labsOnly = consent('labs-only', { type: 'permit', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }, { system: 'http://hl7.org/fhir/resource-types', code: 'DiagnosticReport' }] });
    expect(decide([labsOnly], drLee, labResult, 'opt-in', NOW).permit).toBe(true);
    expect(decide([labsOnly], drLee, imaging, 'opt-in', NOW)).toEqual({ permit: false, basis: 'default' });
  });

  it('names an organisation as actor: everyone acting for it is covered (consent-example-notOrg, inverted)', () => {
    const snuh = consent('snuh', { type: 'permit', actor: [{ role: PRCP, reference: { reference: 'Organization/snuh' } }] });
    expect(decide([snuh], drKim, imaging, 'opt-in', NOW).permit).toBe(true);
    expect(decide([snuh], drLee, imaging, 'opt-in', NOW).permit).toBe(false);
    const team = consent('team', { type: 'permit', actor: [{ role: PRCP, reference: { reference: 'PractitionerRole/kim-cardio' } }] });
    expect(decide([team], drKim, imaging, 'opt-in', NOW).permit).toBe(true);
  });

  it('lets deny override permit across consents (consent-example-Out beside a general permit)', () => {
    const everyone = consent('share-all', { type: 'permit' });
    const notKim = consent('not-kim', { type: 'deny', actor: [{ role: PRCP, reference: { reference: 'Practitioner/dr-kim' } }] }, { meta: { versionId: '1' } });
    expect(decide([everyone, notKim], drKim, labResult, 'opt-out', NOW)).toMatchObject({ permit: false, consent: 'Consent/not-kim/_history/1' });
    expect(decide([everyone, notKim], drLee, labResult, 'opt-in', NOW)).toMatchObject({ permit: true, consent: 'Consent/share-all/_history/2' });
  });

  it('denies by category label: no lab results to anyone, imaging still shared', () => {
    const noLabs = consent('no-labs', { type: 'permit', provision: [{ type: 'deny', securityLabel: [{ system: ACT_CODE, code: 'LABCAT' }] }] });
    expect(decide([noLabs], drLee, labResult, 'opt-out', NOW).permit).toBe(false);
    expect(decide([noLabs], drLee, imaging, 'opt-in', NOW).permit).toBe(true);
  });

  it('applies a deny dataPeriod to a resource of unknown date, and a permit dataPeriod only to known dates in it', () => {
    const undated = resourceFacts({ resourceType: 'Observation', id: 'x', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] } });
    const oldDataDenied = consent('old-denied', { type: 'permit', provision: [{ type: 'deny', dataPeriod: { end: '2020-12-31' } }] });
    expect(decide([oldDataDenied], drLee, undated, 'opt-in', NOW).permit).toBe(false);
    expect(decide([oldDataDenied], drLee, labResult, 'opt-in', NOW).permit).toBe(true);
    const recentOnly = consent('recent', { type: 'permit', dataPeriod: { start: '2026-01-01' } });
    expect(decide([recentOnly], drLee, undated, 'opt-in', NOW).basis).toBe('default');
    expect(decide([recentOnly], drLee, labResult, 'opt-in', NOW).permit).toBe(true);
  });

  it('decides with the default when there are no consents', () => {
    expect(decide([], drKim, labResult, 'opt-in', NOW)).toEqual({ permit: false, basis: 'default' });
    expect(decide([], drKim, labResult, 'opt-out', NOW)).toEqual({ permit: true, basis: 'default' });
  });
});
