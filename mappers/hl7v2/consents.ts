/**
 * CON (consent, v2.6+) -> Consent, one per CON segment, after the v2-to-FHIR IG segment map CON[Consent]: CON-4
 * (consent form number) the identifier, CON-11 (consent status, table 0498) the status by the IG's ConceptMap
 * table-hl70498-to-consent-state-codes (a status outside the table, or none, is `proposed`: not in force), CON-2 (consent type, table 0496) the category, CON-13 (decision date/time)
 * dateTime, CON-14 and CON-15 (effective and end date/time) the provision's period, CON-24/CON-25 (consenter and
 * relationship to the subject, table 0548) the performer.
 *
 * The IG leaves scope and provision to the implementation; here:
 * - scope from the consent type: the disclosure types of table 0496 (001 release of information, 041 disclosure to
 *   family and friends, 057 HIV test disclosure, 103 public release, 110 request to restrict access) are
 *   patient-privacy, the research ones (099, 109) research, every other (procedures, treatments) treatment;
 * - provision.type deny for a restriction (type 110, or CON-21 disclosure level N, no disclosure), else permit; the
 *   base provision names no actor: a sharing consent from a hospital's registration desk is the patient's consent to
 *   share with every institution of the record, which is what the consent decision reads a permit without an actor as;
 * - a patient's refusal (CON-11 R) of a privacy consent is stored as an active deny rather than the IG's `rejected`:
 *   a refusal to disclose is itself the patient's directive, and under an opt-out default a merely rejected consent
 *   would leave the record shared. Refusals of other consents keep the IG's `rejected`.
 *
 * FHIR requires a Consent to name the policy it is made under (ppc-1); a CON segment never does, so policyRule states
 * that it is not known, as the C-CDA advance directives do.
 *
 * The id is the patient's id with the form number (CON-4), else with the consent type and decision time, so a
 * consent sent again updates one resource; CON-1 (set id) is only a position in this message.
 */

import { type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { patientId } from './adt-common.ts';
import { type CodeableConcept, codeSystemUri, codeTable, comp, toCodeableConceptWith, toFhirDateTime } from './datatypes.ts';
import { element, updateDraft } from './drafts.ts';
import { reportIssue } from '../issues.ts';
import type { MappingContext } from './context.ts';

const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const V2_0496 = 'http://terminology.hl7.org/CodeSystem/v2-0496';
const PATIENT_CONSENT: CodeableConcept = { coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] };
const POLICY_UNKNOWN = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };

/** HL7 table 0498 (consent status) -> Consent.status, as the IG's ConceptMap. */
export const CONSENT_STATUS = codeTable<string>({ A: 'active', L: 'active', B: 'inactive', P: 'proposed', R: 'rejected', X: 'inactive' });

const PRIVACY_TYPES: ReadonlySet<string> = new Set(['001', '041', '057', '103', '110']);
const RESEARCH_TYPES: ReadonlySet<string> = new Set(['099', '109']);
/** Table 0496 110: request to restrict access/disclosure to the medical record. */
const RESTRICTION_TYPE = '110';

/** The scope of a consent type (table 0496). */
function scopeOf(type: string): 'patient-privacy' | 'research' | 'treatment' {
  if (PRIVACY_TYPES.has(type)) return 'patient-privacy';
  if (RESEARCH_TYPES.has(type)) return 'research';
  return 'treatment';
}

const SCOPE_DISPLAY: Readonly<Record<string, string>> = { 'patient-privacy': 'Privacy Consent', research: 'Research', treatment: 'Treatment' };

export function buildConsents(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'CON');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  return segments.map((con) => buildConsent(con, patient, context));
}

function buildConsent(con: Hl7Segment, patient: string, context: MappingContext): ResourceDraft {
  const { options } = context;
  const type = comp(fieldOf(con, 2)[0], 1);
  const scope = scopeOf(type);
  const formNumber = comp(fieldOf(con, 4)[0], 1);
  const decided = comp(fieldOf(con, 13)[0], 1);
  const id = formNumber !== '' ? deterministicId('Consent', patient, 'form', formNumber) : deterministicId('Consent', patient, type, decided);
  const statusCode = comp(fieldOf(con, 11)[0], 1).toUpperCase();
  const refusedPrivacy = scope === 'patient-privacy' && statusCode === 'R';
  // A consent without a status the table knows is not in force: 'proposed', which decides nothing, rather than a
  // permission nobody is known to have given.
  const status = refusedPrivacy ? 'active' : CONSENT_STATUS.get(statusCode) ?? 'proposed';
  if (statusCode !== '' && !CONSENT_STATUS.has(statusCode)) {
    reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'CON-11', detail: 'CON-11 consent status is not a table 0498 code; the Consent was stored as proposed (not in force)', value: statusCode });
  }
  const restricts = type === RESTRICTION_TYPE || comp(fieldOf(con, 21)[0], 1).toUpperCase() === 'N' || refusedPrivacy;
  // Table 0496 is HL7's own (THO v2-0496), whether the sender names it or leaves the coding system empty.
  const category = element(fieldOf(con, 2), (rep) => toCodeableConceptWith(rep, (name) => (name === '' || name.toUpperCase() === 'HL70496' ? V2_0496 : codeSystemUri(name, options))));
  const time = (field: number): string | undefined => {
    const value = comp(fieldOf(con, field)[0], 1);
    return value === '' ? undefined : toFhirDateTime(value, `CON-${field}`, options.timeZone);
  };
  const start = time(14);
  const end = time(15);
  return updateDraft('Consent', id, {
    identifier: formNumber === '' ? undefined : [{ value: formNumber, ...(comp(fieldOf(con, 4)[0], 2) ? { assigner: { display: comp(fieldOf(con, 4)[0], 2) } } : {}) }],
    status,
    scope: { coding: [{ system: CONSENT_SCOPE, code: scope, display: SCOPE_DISPLAY[scope] }] },
    category: category ? [category, ...(scope === 'patient-privacy' ? [PATIENT_CONSENT] : [])] : [PATIENT_CONSENT],
    patient: { reference: `Patient/${patient}` },
    dateTime: time(13),
    performer: [performerOf(con, patient)],
    policyRule: POLICY_UNKNOWN,
    provision: { type: restricts ? 'deny' : 'permit', ...(start || end ? { period: { ...(start ? { start } : {}), ...(end ? { end } : {}) } } : {}) },
  });
}

/**
 * Who consented: the patient when CON-25 says self (1) or nobody else is named, else the consenter CON-24 by name
 * (a parent, next of kin, attorney or conservator), with the relationship as the reference's display: no
 * RelatedPerson is made of a name alone.
 */
function performerOf(con: Hl7Segment, patient: string): Record<string, unknown> {
  const relationship = comp(fieldOf(con, 25)[0], 1);
  const consenter = fieldOf(con, 24)[0];
  const name = [comp(consenter, 1), comp(consenter, 2)].filter((part) => part !== '').join(' ');
  if (relationship === '' || relationship === '1' || name === '') return { reference: `Patient/${patient}` };
  const role = CONSENTER_ROLE[relationship];
  return { display: role ? `${name} (${role})` : name };
}

/** HL7 table 0548 (signatory's relationship to subject). */
const CONSENTER_ROLE: Readonly<Record<string, string>> = { 2: 'parent', 3: 'next of kin', 4: 'durable power of attorney in healthcare affairs', 5: 'conservator', 6: 'emergent practitioner', 7: 'non-emergent practitioner' };
