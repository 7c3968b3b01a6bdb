/**
 * Consent as data: the decision whether a person may read a record under the patient's FHIR Consents, the facts of a
 * resource that decision reads, and the checks a Consent must pass to be stored. Pure: no I/O, no clock.
 */
export { decide, isEnforced } from './decide.ts';
export { DEFAULT_SENSITIVITY_RULES, resourceFacts } from './labels.ts';
export { ACCEPTED_SCOPES, ACTOR_TYPES, ENFORCED_SCOPE, MAX_PROVISION_DEPTH, validateConsent, type ConsentIssue, type ConsentIssueCode } from './validate.ts';
export { ACT_CODE, ACT_REASON, CONFIDENTIALITY, CONSENT_SCOPE, RESOURCE_TYPES, labelCovers, purposeCovers } from './codes.ts';
export type {
  ConsentCodeableConcept,
  ConsentCoding,
  ConsentPeriod,
  ConsentProvision,
  ConsentResource,
  Decision,
  DefaultPolicy,
  Requester,
  ResourceFacts,
  SensitivityRule,
} from './types.ts';
