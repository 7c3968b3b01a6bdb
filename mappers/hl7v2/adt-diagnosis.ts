/**
 * DG1 (diagnosis) -> Condition, one per DG1 segment, after the v2-to-FHIR IG segment map DG1[Condition]: DG1-3
 * code (DG1-4 description as its text when the code has none), DG1-5 onset, DG1-21 action code D ->
 * verificationStatus entered-in-error, and the visit (PV1-19) as Condition.encounter.
 *
 * Every DG1 in an ADT message is a diagnosis made for the visit, so category is encounter-diagnosis; DG1-6
 * (diagnosis type: admitting, working, final) is kept beside it as a second category with the sender's coding,
 * because R4 Condition has no element of its own for it (the IG puts it on Encounter.diagnosis.use).
 *
 * The id is the patient's id, the visit's id and the diagnosis code: the same diagnosis sent again for the same
 * visit updates one resource, and the same code in another visit is another Condition.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, isExplicitNull, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { conceptKey, patientId, visitKey } from './adt-common.ts';
import { type CodeableConcept, codeSystemUri, codeTable, comp, localCodeSystem, pruneEmpty, toCodeableConcept, toCodeableConceptWith, toFhirDateTime } from './datatypes.ts';
import { element, updateDraft } from './drafts.ts';
import { eachSegment } from './clinical-common.ts';
import type { MappingContext } from './context.ts';

const ENCOUNTER_DIAGNOSIS: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }],
};

const ENTERED_IN_ERROR: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'entered-in-error', display: 'Entered in Error' }],
};

const KCD_8 = 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8';

/**
 * Diagnosis coding system names (DG1-3 CE-3) that the general table in datatypes.ts does not know: HL7 table 0396
 * names for ICD variants, and the names Korean senders use for KCD-8, whose URI is HL7 Korea's (KR Core
 * CodeSystem kostat-kcd-8). An unversioned 'KCD' and earlier editions (KCD-7) have no published URI and stay local:
 * KCD editions differ in codes, so guessing the edition would misfile codes.
 */
const DIAGNOSIS_CODE_SYSTEMS = codeTable<string>({
  I10C: 'http://hl7.org/fhir/sid/icd-10-cm',
  ICD10CM: 'http://hl7.org/fhir/sid/icd-10-cm',
  I9CDX: 'http://hl7.org/fhir/sid/icd-9-cm',
  ICD10: 'http://hl7.org/fhir/sid/icd-10',
  KCD8: KCD_8,
  'KCD-8': KCD_8,
});

export function buildConditions(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'DG1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  const visit = visitKey(context);
  // A DG1 that cannot be read (no code) costs its own Condition, at its position, not the message's other diagnoses.
  return eachSegment(segments, (dg1) => buildCondition(dg1, patient, visit?.id, context), context.message);
}

/** The id of the Condition a DG1 makes (buildConditions): the patient's, in the visit, of its code. */
export function diagnosisConditionId(dg1: Hl7Segment, context: MappingContext): string {
  return deterministicId('Condition', patientId(context), visitKey(context)?.id ?? '', conceptKey(diagnosisCode(dg1, context)));
}

function buildCondition(dg1: Hl7Segment, patient: string, encounter: string | undefined, context: MappingContext): ResourceDraft {
  const { options } = context;
  const code = diagnosisCode(dg1, context);
  const id = deterministicId('Condition', patient, encounter ?? '', conceptKey(code));
  const diagnosisType = element(fieldOf(dg1, 6), (rep) => toCodeableConcept(rep, options, 'HL70052'));
  return updateDraft('Condition', id, {
    verificationStatus: comp(fieldOf(dg1, 21)[0], 1).toUpperCase() === 'D' ? ENTERED_IN_ERROR : undefined,
    category: [ENCOUNTER_DIAGNOSIS, ...(diagnosisType ? [diagnosisType] : [])],
    code,
    subject: { reference: `Patient/${patient}` },
    encounter: encounter === undefined ? undefined : { reference: `Encounter/${encounter}` },
    onsetDateTime: element(fieldOf(dg1, 5), (rep) => toFhirDateTime(comp(rep, 1), 'DG1-5', options.timeZone)),
  });
}

/** DG1-3 as a CodeableConcept, with DG1-4 (description, kept for backward compatibility) as text when DG1-3 has none. */
function diagnosisCode(dg1: Hl7Segment, context: MappingContext): CodeableConcept {
  const codeField = fieldOf(dg1, 3);
  const sent = isExplicitNull(codeField) ? undefined : toDiagnosisConcept(codeField[0] ?? [], context);
  const description = comp(fieldOf(dg1, 4)[0], 1);
  const code = pruneEmpty<CodeableConcept>({ ...sent, text: sent?.text ?? (description || undefined) });
  if (code === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'DG1-3: the diagnosis code is empty (and DG1-4 has no description)', {
      location: 'DG1-3',
    });
  }
  return code;
}

/**
 * CE/CWE with the diagnosis coding system names above: as toCodeableConcept (datatypes.ts), except that a CE-3 name
 * the general table leaves local is looked up in DIAGNOSIS_CODE_SYSTEMS first. A configured name (options) or one
 * the general table knows keeps its URI.
 */
function toDiagnosisConcept(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  return toCodeableConceptWith(repetition, (systemName) => diagnosisSystem(systemName, context));
}

function diagnosisSystem(name: string, context: MappingContext): string {
  const { options } = context;
  // DG1-3 values come from table 0051 (diagnosis code), which is user-defined: without a system name they are local.
  if (name === '') return localCodeSystem('HL70051', options);
  const general = codeSystemUri(name, options);
  if (general !== localCodeSystem(name, options)) return general;
  return DIAGNOSIS_CODE_SYSTEMS.get(name.toUpperCase()) ?? general;
}
