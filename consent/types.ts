/**
 * What a consent decision is made on: the person asking (or the system acting for one), the resource, the purpose,
 * and the patient's Consent resources. Pure data; consent/decide.ts makes the decision.
 */

/** A patient's privacy policy when no active consent applies (config consent.default). */
export type DefaultPolicy = 'opt-in' | 'opt-out';

/** Who is asking, as consents can name them. */
export interface Requester {
  /** The person's own resource: `Practitioner/x`, `Patient/x`, `RelatedPerson/x`. */
  fhirUser: string;
  /** `Organization/x` the person acts for. */
  organization?: string;
  /** `PractitionerRole/x`, `CareTeam/x` the person is part of. */
  memberOf: readonly string[];
  /** Role codes (v3 RoleCode and configured ones). */
  roles: readonly string[];
  /** v3 PurposeOfUse code the request is made under (TREAT, ETREAT, HPAYMT, HRESCH, PATRQT, ...). */
  purpose: string;
}

/** What a consent can be matched against about one resource. */
export interface ResourceFacts {
  resourceType: string;
  id: string;
  /**
   * Security labels and categories of the resource: its meta.security codes and those derived from its content
   * (consent/labels.ts), as `system|code`.
   */
  labels: readonly string[];
  /** Codes of the resource (its code, category, type), as `system|code`, that `provision.code` may name. */
  codes: readonly string[];
  /** When the data was recorded or happened, for `provision.dataPeriod`; absent: unknown. */
  when?: Date;
}

/** One decision on one resource. */
export interface Decision {
  permit: boolean;
  /** What decided: a consent (its `Consent/x/_history/v`), or the default policy because none applied. */
  basis: 'consent' | 'default';
  /** `Consent/x/_history/v` for basis 'consent'. */
  consent?: string;
  /**
   * Which provision of that consent decided, as a FHIRPath-like location (`Consent.provision.provision[1]`), for
   * review and for the AuditEvent's explanation; absent for basis 'default'.
   */
  provision?: string;
}

/** A FHIR R4 Coding, as consents carry them. */
export interface ConsentCoding {
  system?: string;
  code?: string;
  display?: string;
}

export interface ConsentCodeableConcept {
  coding?: ConsentCoding[];
  text?: string;
}

export interface ConsentPeriod {
  start?: string;
  end?: string;
}

/** Consent.provision (R4): a rule, with nested provisions as its exceptions. */
export interface ConsentProvision {
  type?: 'permit' | 'deny';
  period?: ConsentPeriod;
  actor?: Array<{ role?: ConsentCodeableConcept; reference?: { reference?: string } }>;
  action?: ConsentCodeableConcept[];
  securityLabel?: ConsentCoding[];
  purpose?: ConsentCoding[];
  class?: ConsentCoding[];
  code?: ConsentCodeableConcept[];
  dataPeriod?: ConsentPeriod;
  data?: Array<{ meaning?: string; reference?: { reference?: string } }>;
  provision?: ConsentProvision[];
}

/**
 * A stored FHIR R4 Consent, as far as decisions read it. `id` and `meta.versionId` name the version a decision cites;
 * the rest is as the resource holds it.
 */
export interface ConsentResource {
  resourceType: 'Consent';
  id: string;
  meta?: { versionId?: string; lastUpdated?: string; security?: ConsentCoding[] };
  status: string;
  scope?: ConsentCodeableConcept;
  category?: ConsentCodeableConcept[];
  patient?: { reference?: string };
  dateTime?: string;
  performer?: Array<{ reference?: string }>;
  organization?: Array<{ reference?: string }>;
  provision?: ConsentProvision;
  [element: string]: unknown;
}

/**
 * One rule deriving security labels from a resource's content (consent/labels.ts): a coding in `system` whose code
 * is listed, starts with one of `prefixes`, or falls in one of `ranges` (inclusive, compared on the code without its
 * dot, upper-cased) gives the resource `labels` (`system|code`). config `consent.sensitivityRules` adds rules of this
 * shape to the defaults.
 */
export interface SensitivityRule {
  /** Code systems the rule reads (several spellings of one system, e.g. ICD-10 and KCD-8). */
  systems: readonly string[];
  codes?: readonly string[];
  prefixes?: readonly string[];
  ranges?: ReadonlyArray<readonly [from: string, to: string]>;
  /** Labels the resource gets, as `system|code`. */
  labels: readonly string[];
  /** Only for these resource types; absent: any. */
  resourceTypes?: readonly string[];
}
