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
}
