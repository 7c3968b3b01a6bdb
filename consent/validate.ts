/**
 * What the engine needs of a Consent beyond FHIR R4 structure (which mappers/fhir-validate.ts checks): whom it is
 * about, what kind of consent it is, and provisions that decide.ts can evaluate as written. Each problem is a coded
 * issue with the element it is about; details name elements and codes, never values from the record.
 *
 * Scopes: patient-privacy is enforced (consent/decide.ts); adr, research and treatment are accepted and kept as
 * records, with an information issue saying they decide no access.
 */
import { ACT_CODE, ACT_CODE_LABELS, ACT_REASON, CONFIDENTIALITY, CONFIDENTIALITY_INFO_TYPES, CONFIDENTIALITY_ORDER, CONSENT_SCOPE, RESOURCE_TYPES, isPurposeOfUse } from './codes.ts';
import { instantOf } from './decide.ts';
import type { ConsentProvision } from './types.ts';

export type ConsentIssueCode =
  | 'CONSENT_NOT_A_CONSENT'
  | 'CONSENT_SCOPE_MISSING'
  | 'CONSENT_SCOPE_UNSUPPORTED'
  | 'CONSENT_SCOPE_NOT_ENFORCED'
  | 'CONSENT_STATUS_INVALID'
  | 'CONSENT_PATIENT_INVALID'
  | 'CONSENT_PROVISION_MISSING'
  | 'CONSENT_PROVISION_TYPE_INVALID'
  | 'CONSENT_PROVISION_TOO_DEEP'
  | 'CONSENT_PERIOD_INVALID'
  | 'CONSENT_ACTOR_INVALID'
  | 'CONSENT_ACTOR_UNKNOWN'
  | 'CONSENT_PURPOSE_UNKNOWN'
  | 'CONSENT_SECURITY_LABEL_UNKNOWN'
  | 'CONSENT_CLASS_UNKNOWN';

export interface ConsentIssue {
  /** error: the Consent is refused; warning and information: stored, with the issue reported. */
  severity: 'error' | 'warning' | 'information';
  code: ConsentIssueCode;
  /** FHIRPath-like location: `Consent.provision.provision[0].actor[1].reference`. */
  location: string;
  detail: string;
}

export const ENFORCED_SCOPE = 'patient-privacy';
export const ACCEPTED_SCOPES: readonly string[] = ['patient-privacy', 'adr', 'research', 'treatment'];
const STATUSES: ReadonlySet<string> = new Set(['draft', 'proposed', 'active', 'rejected', 'inactive', 'entered-in-error']);
/** Who a provision may name as actor: people and the groups they act in. */
export const ACTOR_TYPES: readonly string[] = ['Practitioner', 'PractitionerRole', 'Organization', 'CareTeam', 'RelatedPerson', 'Patient'];
const REFERENCE = /^([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}$/;
/** Nesting deeper than this is refused: every level is evaluated for every resource a person reads. */
export const MAX_PROVISION_DEPTH = 8;

/** The issues of a Consent; none with severity error means the engine can store and enforce it. */
export function validateConsent(resource: Record<string, unknown>): ConsentIssue[] {
  const issues: ConsentIssue[] = [];
  const add = (severity: ConsentIssue['severity'], code: ConsentIssueCode, location: string, detail: string): void => {
    issues.push({ severity, code, location, detail });
  };
  if (resource.resourceType !== 'Consent') {
    add('error', 'CONSENT_NOT_A_CONSENT', 'resourceType', 'the resource is not a Consent');
    return issues;
  }
  if (typeof resource.status !== 'string' || !STATUSES.has(resource.status)) {
    add('error', 'CONSENT_STATUS_INVALID', 'Consent.status', `status must be one of ${[...STATUSES].join(', ')}`);
  }
  const scopes = codingsOf(resource.scope).filter((c) => c.system === CONSENT_SCOPE || c.system === undefined).map((c) => c.code);
  const scope = scopes.find((code) => ACCEPTED_SCOPES.includes(code));
  if (scopes.length === 0) add('error', 'CONSENT_SCOPE_MISSING', 'Consent.scope', `scope needs a coding of ${CONSENT_SCOPE}`);
  else if (scope === undefined) add('error', 'CONSENT_SCOPE_UNSUPPORTED', 'Consent.scope', `scope must be one of ${ACCEPTED_SCOPES.join(', ')}`);
  else if (scope !== ENFORCED_SCOPE) add('information', 'CONSENT_SCOPE_NOT_ENFORCED', 'Consent.scope', `a ${scope} consent is kept as a record; only patient-privacy consents decide who may read what`);
  const patient = (resource.patient as { reference?: unknown } | undefined)?.reference;
  if (typeof patient !== 'string' || !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(patient)) {
    add('error', 'CONSENT_PATIENT_INVALID', 'Consent.patient', 'patient must be a reference Patient/<id>');
  }
  const provision = resource.provision as ConsentProvision | undefined;
  if (provision === undefined || provision === null || typeof provision !== 'object') {
    if (scope === ENFORCED_SCOPE) add('error', 'CONSENT_PROVISION_MISSING', 'Consent.provision', 'a patient-privacy consent needs a provision saying what it permits or denies');
  } else {
    checkProvision(provision, 'Consent.provision', 0, add);
  }
  return issues;
}

type Add = (severity: ConsentIssue['severity'], code: ConsentIssueCode, location: string, detail: string) => void;

function checkProvision(p: ConsentProvision, path: string, depth: number, add: Add): void {
  if (depth >= MAX_PROVISION_DEPTH) {
    add('error', 'CONSENT_PROVISION_TOO_DEEP', path, `provisions may nest at most ${MAX_PROVISION_DEPTH} deep`);
    return;
  }
  if (p.type !== undefined && p.type !== 'permit' && p.type !== 'deny') add('error', 'CONSENT_PROVISION_TYPE_INVALID', `${path}.type`, 'type must be permit or deny');
  if (depth === 0 && p.type === undefined) add('warning', 'CONSENT_PROVISION_TYPE_INVALID', `${path}.type`, 'the base provision has no type: it decides nothing itself, only its nested provisions do');
  for (const name of ['period', 'dataPeriod'] as const) {
    const period = p[name];
    if (period === undefined) continue;
    const start = period.start === undefined ? Number.NEGATIVE_INFINITY : instantOf(period.start, false);
    const end = period.end === undefined ? Number.POSITIVE_INFINITY : instantOf(period.end, true);
    if (Number.isNaN(start) || Number.isNaN(end)) add('error', 'CONSENT_PERIOD_INVALID', `${path}.${name}`, `${name} start and end must be FHIR dates or dateTimes`);
    else if (period.start !== undefined && period.end !== undefined && instantOf(period.start, false) > instantOf(period.end, false)) {
      add('error', 'CONSENT_PERIOD_INVALID', `${path}.${name}`, `${name} starts after it ends`);
    }
  }
  (Array.isArray(p.actor) ? p.actor : []).forEach((actor, i) => {
    const reference = actor?.reference?.reference;
    const type = typeof reference === 'string' ? REFERENCE.exec(reference)?.[1] : undefined;
    if (type === undefined || !ACTOR_TYPES.includes(type)) {
      add('error', 'CONSENT_ACTOR_INVALID', `${path}.actor[${i}].reference`, `an actor must be a literal reference to one of ${ACTOR_TYPES.join(', ')}`);
    }
  });
  (Array.isArray(p.purpose) ? p.purpose : []).forEach((purpose, i) => {
    if (!purpose?.code || (purpose.system !== undefined && purpose.system !== ACT_REASON) || !isPurposeOfUse(purpose.code)) {
      add('error', 'CONSENT_PURPOSE_UNKNOWN', `${path}.purpose[${i}]`, `a purpose must be a v3 PurposeOfUse code (${ACT_REASON})`);
    }
  });
  (Array.isArray(p.securityLabel) ? p.securityLabel : []).forEach((label, i) => {
    const code = label?.code ?? '';
    const known = label?.system === ACT_CODE ? ACT_CODE_LABELS.has(code) : label?.system === CONFIDENTIALITY ? CONFIDENTIALITY_ORDER.includes(code) || CONFIDENTIALITY_INFO_TYPES.has(code) : false;
    if (!known) {
      add('error', 'CONSENT_SECURITY_LABEL_UNKNOWN', `${path}.securityLabel[${i}]`, `a security label must be a v3 ActCode information sensitivity or category code, or a v3 Confidentiality code`);
    }
  });
  (Array.isArray(p.class) ? p.class : []).forEach((c, i) => {
    if (c?.system !== undefined && c.system !== RESOURCE_TYPES) {
      add('warning', 'CONSENT_CLASS_UNKNOWN', `${path}.class[${i}]`, `only classes of ${RESOURCE_TYPES} are matched; this one matches nothing`);
    }
  });
  (Array.isArray(p.provision) ? p.provision : []).forEach((nested, i) => {
    if (nested && typeof nested === 'object') checkProvision(nested, `${path}.provision[${i}]`, depth + 1, add);
  });
}

function codingsOf(concept: unknown): Array<{ system: string | undefined; code: string }> {
  const codings = (concept as { coding?: unknown } | undefined)?.coding;
  if (!Array.isArray(codings)) return [];
  return codings.flatMap((c: { system?: unknown; code?: unknown } | null) =>
    c && typeof c.code === 'string' ? [{ system: typeof c.system === 'string' ? c.system : undefined, code: c.code }] : [],
  );
}

/** Actor types a consent must name someone registered by: the clinicians and organisations it permits or denies. */
const REGISTERED_ACTOR_TYPES: ReadonlySet<string> = new Set(['Practitioner', 'PractitionerRole', 'Organization', 'CareTeam']);

/**
 * The actor references of every provision that must name a registered clinician or organisation, with where they
 * are, for the write route to look up (api/fhir-write.ts).
 */
export function registeredActorReferences(resource: Record<string, unknown>): Array<{ reference: string; location: string }> {
  const out: Array<{ reference: string; location: string }> = [];
  const walk = (provision: unknown, location: string, depth: number): void => {
    if (!provision || typeof provision !== 'object' || depth > MAX_PROVISION_DEPTH) return;
    const p = provision as { actor?: unknown; provision?: unknown };
    (Array.isArray(p.actor) ? p.actor : []).forEach((actor: unknown, i: number) => {
      const reference = (actor as { reference?: { reference?: unknown } } | null)?.reference?.reference;
      if (typeof reference === 'string' && REGISTERED_ACTOR_TYPES.has(reference.split('/')[0]!)) out.push({ reference, location: `${location}.actor[${i}].reference` });
    });
    (Array.isArray(p.provision) ? p.provision : []).forEach((nested: unknown, i: number) => walk(nested, `${location}.provision[${i}]`, depth + 1));
  };
  walk(resource.provision, 'Consent.provision', 1);
  return out;
}
