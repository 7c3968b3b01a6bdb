/**
 * The consents a patient writes from the portal, as FHIR R4 Consent resources the engine's consent decision reads
 * (consent/decide.ts): scope patient-privacy, category LOINC 59284-0, the patient as performer, an opt-in policy
 * rule, and one provision permitting the named practitioner or organisation to access the record for a purpose and
 * a period, with one nested deny per category of sensitive information the patient keeps out.
 *
 * The categories deny by v3-ActCode security labels, the ones the engine derives from a resource's codes
 * (consent/labels.ts: mental health MH and PSY, substance use SUD and ETH, HIV, genetics GDIS) or that a sender put
 * in meta.security. Pure, so that it is tested without a browser.
 */
import type { FhirResource } from './describe.ts';

const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const LOINC = 'http://loinc.org';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';

/** Sensitive categories a patient may keep out of a permit, each with the labels that mark it. */
export const SENSITIVE_CATEGORIES = [
  { key: 'mental-health', title: 'Mental health', labels: [{ code: 'MH', display: 'mental health information sensitivity' }, { code: 'PSY', display: 'psychiatry disorder information sensitivity' }] },
  { key: 'hiv', title: 'HIV', labels: [{ code: 'HIV', display: 'HIV/AIDS information sensitivity' }] },
  { key: 'genetics', title: 'Genetics', labels: [{ code: 'GDIS', display: 'genetic disease information sensitivity' }] },
  { key: 'substance-use', title: 'Substance use', labels: [{ code: 'SUD', display: 'substance use disorder information sensitivity' }, { code: 'ETH', display: 'substance abuse information sensitivity' }] },
] as const;

export type SensitiveCategory = (typeof SENSITIVE_CATEGORIES)[number]['key'];

/** Purposes a patient grants access for. */
export const CONSENT_PURPOSES = [{ code: 'TREAT', title: 'Treatment' }] as const;

export interface ConsentGrant {
  /** `Patient/x`: whose record. */
  patient: string;
  /** `Practitioner/x` or `Organization/x`: who may read it. */
  actor: string;
  /** A v3 PurposeOfUse code. */
  purpose: string;
  exclude: readonly SensitiveCategory[];
  /** yyyy-mm-dd, or empty: from now. */
  from: string;
  /** yyyy-mm-dd, or empty: until revoked. */
  to: string;
}

const ACTOR = /^(Practitioner|Organization|PractitionerRole|CareTeam)\/[A-Za-z0-9.-]{1,64}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Why a grant cannot be written, or undefined when it can. */
export function grantProblem(grant: ConsentGrant): string | undefined {
  if (!ACTOR.test(grant.actor)) return 'Name who may read your record as Practitioner/<id> or Organization/<id>.';
  if (grant.from !== '' && !DATE.test(grant.from)) return 'The start date must be a date (yyyy-mm-dd).';
  if (grant.to !== '' && !DATE.test(grant.to)) return 'The end date must be a date (yyyy-mm-dd).';
  if (grant.from !== '' && grant.to !== '' && grant.to < grant.from) return 'The end date is before the start date.';
  if (!CONSENT_PURPOSES.some((p) => p.code === grant.purpose)) return 'Choose what the access is for.';
  return undefined;
}

/** The Consent resource for a grant; `now` is its dateTime. */
export function consentFor(grant: ConsentGrant, now: Date): FhirResource {
  const period = { ...(grant.from !== '' ? { start: grant.from } : {}), ...(grant.to !== '' ? { end: grant.to } : {}) };
  const purpose = CONSENT_PURPOSES.find((p) => p.code === grant.purpose);
  const denies = SENSITIVE_CATEGORIES.filter((category) => grant.exclude.includes(category.key)).map((category) => ({
    type: 'deny',
    securityLabel: category.labels.map((label) => ({ system: ACT_CODE, code: label.code, display: label.display })),
  }));
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: CONSENT_SCOPE, code: 'patient-privacy', display: 'Privacy Consent' }] },
    category: [{ coding: [{ system: LOINC, code: '59284-0', display: 'Patient Consent' }] }],
    patient: { reference: grant.patient },
    dateTime: now.toISOString(),
    performer: [{ reference: grant.patient }],
    policyRule: { coding: [{ system: ACT_CODE, code: 'OPTIN', display: 'opt-in' }] },
    provision: {
      type: 'permit',
      ...(Object.keys(period).length > 0 ? { period } : {}),
      actor: [{ role: { coding: [{ system: PARTICIPATION_TYPE, code: 'IRCP', display: 'information recipient' }] }, reference: { reference: grant.actor } }],
      action: [{ coding: [{ system: CONSENT_ACTION, code: 'access', display: 'Access' }] }],
      purpose: [{ system: ACT_REASON, code: grant.purpose, ...(purpose ? { display: purpose.title.toLowerCase() } : {}) }],
      ...(denies.length > 0 ? { provision: denies } : {}),
    },
  };
}

/** A consent as a patient reads it in the list. */
export interface ConsentSummary {
  id: string;
  status: string;
  /** permit or deny, of the top provision. */
  kind: string;
  actors: string[];
  purposes: string[];
  period: { start?: string; end?: string };
  /** The category titles (or label codes) nested denies keep out. */
  excluded: string[];
  dateTime: string | undefined;
}

const record = (value: unknown): Record<string, unknown> | undefined => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

export function summariseConsent(consent: FhirResource): ConsentSummary {
  const provision = record(consent.provision);
  const period = record(provision?.period) ?? {};
  const deniedCodes = new Set(
    list(provision?.provision)
      .map(record)
      .filter((p) => p?.type === 'deny')
      .flatMap((p) => list(p?.securityLabel).map((l) => record(l)?.code))
      .filter((c): c is string => typeof c === 'string'),
  );
  const excluded = SENSITIVE_CATEGORIES.filter((category) => category.labels.some((l) => deniedCodes.has(l.code))).map((c) => c.title as string);
  const known = new Set(SENSITIVE_CATEGORIES.flatMap((c) => c.labels.map((l) => l.code as string)));
  for (const code of deniedCodes) if (!known.has(code)) excluded.push(code);
  return {
    id: typeof consent.id === 'string' ? consent.id : '',
    status: typeof consent.status === 'string' ? consent.status : 'unknown',
    kind: typeof provision?.type === 'string' ? provision.type : 'permit',
    actors: list(provision?.actor).map((a) => record(record(a)?.reference)).map((r) => (typeof r?.display === 'string' ? r.display : typeof r?.reference === 'string' ? r.reference : undefined)).filter((a): a is string => a !== undefined),
    purposes: list(provision?.purpose).map((p) => record(p)?.code).filter((c): c is string => typeof c === 'string'),
    period: { ...(typeof period.start === 'string' ? { start: period.start } : {}), ...(typeof period.end === 'string' ? { end: period.end } : {}) },
    excluded,
    dateTime: typeof consent.dateTime === 'string' ? consent.dateTime : undefined,
  };
}

/** The same consent with status inactive: a revocation is an update (PUT), so its history keeps what was granted. */
export function revoked(consent: FhirResource): FhirResource {
  return { ...consent, status: 'inactive' };
}
